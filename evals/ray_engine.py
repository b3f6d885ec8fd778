"""Eval replays on a Ray cluster: model-holding actors score batches, the driver stores the rows.

    python -m evals run --task asr ... --engine ray [--address HOST:PORT] [--actors N]

This process (the driver) keeps what `run_task` keeps everywhere: the run
folder, the database rows, the progress bar. On the cluster, each actor loads
the task's models once and scores batch after batch from one queue: an actor
that finishes takes the next batch, so a faster node does more. Placement:
one actor per GPU when the cluster has GPUs (Ray sets each actor's
`CUDA_VISIBLE_DEVICES`, so the spec's `auto` device is that GPU), else one per
node (the models use the node's cores themselves); `--actors` overrides the
count and spreads them.

A lost actor (its node gone, killed, out of memory) loses nothing: its batch
goes back on the queue for the others. With no actor left the run stops with
what is done stored, and the same command resumes it.

Every node must read the dataset's audio at the manifest's paths (a shared
volume) and have the project's dependencies installed (the same venv or
image); this checkout's packages are shipped with the job, so the code that
scores is the code the run folder's git sha names.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

from evals.tasks.base import Task
from workbench.config import REPO_ROOT
from workbench.db.models import EvalSample

log = logging.getLogger(__name__)

# The packages an actor imports to unpickle and run a task (the layer rule: evals
# uses workbench and workbench_datasets, nothing else of the project).
SHIPPED_PACKAGES = ("workbench", "workbench_datasets", "evals")
BATCHES_IN_FLIGHT = 2


def keep_ray_on_loopback() -> None:
    """Keep a one-machine Ray cluster (tests, benches) on 127.0.0.1; call before importing ray.

    Ray's bootstrap turns a `127.0.0.1` address into the machine's outward
    address and connects there; its switch for single-host platforms
    (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`) makes it use loopback instead.
    """
    if "ray" in sys.modules:
        raise RuntimeError("keep_ray_on_loopback() must run before ray is imported")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


def loopback_cluster(nodes: int) -> Any:
    """Ray's multi-node harness (`ray.cluster_utils.Cluster`) on loopback, started: a head
    without CPUs and `nodes` one-CPU worker nodes, each a raylet of its own, so actors
    land on nodes as on several hosts (tests, benches). The caller shuts it down.

    Call `keep_ray_on_loopback()` before ray is first imported."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False},
    )
    try:
        for _ in range(nodes):
            cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
    except BaseException:
        cluster.shutdown()
        raise
    return cluster


class NoActorsLeft(RuntimeError):
    """Every actor died; the run folder keeps what was scored (run the command again to resume)."""


class _Scorer:
    """One task's models in a Ray actor (created through `ray.remote`)."""

    def __init__(self, task: Task[Any]) -> None:
        self._task = task
        self._loop = asyncio.new_event_loop()
        task.load()

    def score(self, batch: Sequence[Any]) -> list[EvalSample]:
        return self._loop.run_until_complete(self._task.score(batch))


class RayEngine:
    """Scores batches on Ray actors (see the module docstring).

    `address`: a running cluster (`HOST:PORT` of its head, `ray://...` or
    `auto`); None starts a Ray instance on this machine for the run, on loopback
    only (or uses `RAY_ADDRESS` when set). `actors`: how many; default one per GPU, else one
    per node. `actor_cpus`: the CPUs Ray reserves for each actor spread without GPUs (a
    simulated caller mostly waits on its call, so it asks for a fraction).
    """

    def __init__(
        self, address: str | None = None, *, actors: int | None = None, actor_cpus: float = 1.0
    ) -> None:
        if actors is not None and actors < 1:
            raise ValueError("--actors must be at least 1")
        self.address = address
        self.actors = actors
        self.actor_cpus = actor_cpus
        self.requeued = 0  # batches a lost actor had taken and another scored

    async def scored(
        self, task: Task[Any], batches: Sequence[Sequence[Any]]
    ) -> AsyncIterator[tuple[Sequence[Any], list[EvalSample]]]:
        if not batches:
            return
        local = self.address is None and "RAY_ADDRESS" not in os.environ
        if local and "ray" not in sys.modules:
            keep_ray_on_loopback()
        import ray

        started_here = not ray.is_initialized()
        if started_here:
            ray.init(
                address=self.address,
                runtime_env={"py_modules": [str(REPO_ROOT / name) for name in SHIPPED_PACKAGES]},
                include_dashboard=False,
                logging_level=logging.WARNING,
                # A Ray started for one run serves this machine only: its services listen
                # on loopback, not on the machine's outward address for anyone to reach.
                **({"_node_ip_address": "127.0.0.1"} if local else {}),
            )
        actors: list[Any] = []
        try:
            actor_class = ray.remote(max_restarts=0, max_task_retries=0)(_Scorer)
            placements = self._placements()
            actors = [
                actor_class.options(**options).remote(task.for_worker(index, len(placements)))
                for index, options in enumerate(placements)
            ]
            async for done in self._dispatch(task, actors, batches):
                yield done
        finally:
            for actor in actors:
                ray.kill(actor)
            if started_here:
                ray.shutdown()

    def _placements(self) -> list[dict[str, Any]]:
        """Actor options: one per GPU, else one per node with a CPU; `actors` spreads that many."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        gpus = int(ray.cluster_resources().get("GPU", 0))
        if gpus:
            return [{"num_gpus": 1, "num_cpus": 1}] * (self.actors or gpus)
        if self.actors:
            return [{"num_cpus": self.actor_cpus, "scheduling_strategy": "SPREAD"}] * self.actors
        nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) >= 1]
        # Soft: should the node go before the actor starts, it may start elsewhere.
        return [
            {
                "num_cpus": 1,
                "scheduling_strategy": NodeAffinitySchedulingStrategy(n["NodeID"], soft=True),
            }
            for n in nodes
        ]

    async def _dispatch(
        self, task: Task[Any], actors: list[Any], batches: Sequence[Sequence[Any]]
    ) -> AsyncIterator[tuple[Sequence[Any], list[EvalSample]]]:
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        queue = deque(batches)
        # Each actor holds BATCHES_IN_FLIGHT batches: the next one is there when it
        # finishes, not after a round trip through this process. Every actor gets its
        # first batch before any gets a second (fewer batches than slots still spread).
        slots = deque(actor for _ in range(BATCHES_IN_FLIGHT) for actor in actors)
        pending: dict[Any, tuple[Any, Sequence[Any]]] = {}
        lost: list[str] = []
        while queue or pending:
            while slots and queue:
                actor, batch = slots.popleft(), queue.popleft()
                pending[actor.score.remote(batch)] = (actor, batch)
            if not pending:
                raise NoActorsLeft(
                    f"every Ray actor of this {task.name} run died ({'; '.join(lost[-3:])}); "
                    "the run folder keeps what was scored: run the same command again to resume"
                )
            ready, _ = await asyncio.to_thread(ray.wait, list(pending), num_returns=1)
            for ref in ready:
                actor, batch = pending.pop(ref)
                try:
                    samples: list[EvalSample] = ray.get(ref)
                except (RayActorError, ActorDiedError, ActorUnavailableError) as exc:
                    # The actor is gone (or never loaded its models): its batch goes back,
                    # and its slots with it.
                    lost.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                    log.warning("a Ray actor was lost; its batch of %d goes back", len(batch))
                    self.requeued += 1
                    queue.appendleft(batch)
                    continue
                slots.append(actor)
                yield batch, samples
