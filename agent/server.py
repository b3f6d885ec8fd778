"""The worker's server: room slots, model health and the give-up path.

Everything here that reaches into livekit-agents' private parts, which ties the
project to the pinned livekit-agents (1.8.9); check each on an upgrade:

- `AgentServer._http_server` and `AgentServer._proc_pool`, caught as they are
  assigned in `run()` (`__setattr__`), their `app` and `on(...)` events, the pool's
  `processes`, `_closed` and `aclose()`, a process's `pid`, `exitcode`, `killed` and
  `kill()`;
- `AgentServer._closed`, `_worker_load`, `_reserved_slots`, `_get_effective_load()`
  (and `_is_available()`, which the unit test drives);
- `livekit.agents.telemetry.http_server.metrics`, the handler of `/metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from typing import Any

from aiohttp import web
from livekit.agents import AgentServer
from livekit.agents.telemetry.http_server import metrics as all_metrics

from agent.metrics import JOB_FAILURES
from agent.model_health import ModelHealth
from agent.settings import agent_settings

log = logging.getLogger("workbench.agent")


def job_load(worker: AgentServer) -> float:
    """Load as the share of room slots in use.

    The default (CPU utilisation) crosses its threshold on a 2-core machine
    whenever a job process loads its models, and LiveKit does not retry a room
    it could not dispatch; counting rooms is steady. `bench/` measures how many
    rooms a worker sustains, which is where `max_jobs` comes from.
    """
    return len(worker.active_jobs) / agent_settings().max_jobs


class SlotCountingServer(AgentServer):
    """An AgentServer that counts room slots and knows whether its models load.

    Slots: livekit-agents estimates a job accepted but not started yet as
    load_threshold / num_idle_processes while no job runs (0.99 here), so an idle
    worker refused the second of two rooms created at the same moment, and the
    LiveKit server does not retry: that room never got an agent (seen in bench/
    with two and three rooms at once). Counted in slots, as `job_load` counts
    running jobs, the worker takes `max_jobs` rooms however they arrive.

    Models: `model_health` watches the job processes (see agent/model_health.py)
    and serves `/models`; after repeated failures the worker shuts down.
    """

    def __init__(self, *, stack_name: str, **kwargs: Any) -> None:
        # Set first: __setattr__ below uses it while the base class builds itself.
        self.model_health = ModelHealth(
            status_file=agent_settings().status_file,
            on_give_up=self._give_up,
            on_failure=lambda: JOB_FAILURES.labels(stack_name).inc(),
        )
        super().__init__(**kwargs)
        self.on("worker_registered", lambda *_: self.model_health.worker_registered())

    def __setattr__(self, name: str, value: Any) -> None:
        # livekit-agents builds its HTTP server and process pool inside run() and
        # starts them at once, with no hook between: attach the model-health route
        # and listeners as they are assigned, which is before they start.
        if name == "_http_server" and value is not None:
            # /metrics: livekit-agents' and ours, from every process of the worker
            # (prometheus multiprocess mode, agent/metrics.py)
            value.app.add_routes(
                [web.get("/models", self.model_health.handle), web.get("/metrics", all_metrics)]
            )
        elif name == "_proc_pool" and value is not None:
            value.on("process_ready", lambda proc: self.model_health.process_ready(proc.pid))
            value.on(
                "process_closed",
                lambda proc: self.model_health.process_closed(
                    proc.pid,
                    proc.exitcode,
                    killed=proc.killed,
                    shutting_down=self._closed or value._closed,
                ),
            )
        super().__setattr__(name, value)

    def _give_up(self, reason: str) -> None:
        # Neither aclose() nor SIGTERM ends the worker here: while no process has
        # initialised, run() waits in the pool's start for up to the initialise
        # timeout (180 s) and the pool keeps respawning. So stop the pool, kill what
        # it started, and leave with status 3; the reason is in the log and the
        # status file already.
        log.error("stopping the worker: %s", reason)

        async def stop() -> None:
            await self._proc_pool.aclose()
            for proc in list(self._proc_pool.processes):
                kill = getattr(proc, "kill", None)  # process executors; threads have none
                if kill is not None:
                    with contextlib.suppress(Exception):
                        await kill()
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(3)

        _stopping.append(asyncio.get_running_loop().create_task(stop()))

    def _get_effective_load(self) -> float:
        return float(self._worker_load) + self._reserved_slots / agent_settings().max_jobs


_stopping: list[asyncio.Task[None]] = []  # keeps the give-up task referenced
