"""Eval replays on a real local Ray cluster: the same rows as the local engine, and a lost node loses nothing.

The cluster is Ray's own multi-node test harness (`ray.cluster_utils.Cluster`):
a head (GCS, no CPUs for actors) and two worker nodes, each a raylet of its
own on this machine, so actors land one per node as they would on two hosts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import soundfile as sf
from threadpoolctl import threadpool_limits

from evals.ray_engine import RayEngine, keep_ray_on_loopback, loopback_cluster
from evals.run_folder import RunFolder
from evals.runner import run_task
from evals.tasks.asr import AsrTask
from workbench.config import REPO_ROOT
from workbench.models import load_spec
from workbench_datasets import pocketsphinx
from workbench_datasets.manifest import ManifestRow, read_manifest, write_manifest

if "ray" not in sys.modules:
    keep_ray_on_loopback()
ray = pytest.importorskip("ray", reason="ray is in the `scale` extra (./dev installs it)")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.integration

CT2 = REPO_ROOT / "configs" / "models" / "whisper-tiny-en-ct2.yaml"
# Timings differ between engines; everything else a run reports must not.
TIMINGS = {"rtfx", "inference_s", "rtf"}


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    cluster = loopback_cluster(2)
    try:
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def _untimed(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in TIMINGS}


async def test_ray_gives_the_local_rows_and_survives_a_lost_node(
    cluster: Cluster, tmp_path: Path
) -> None:
    if not pocketsphinx.available():
        pytest.skip(pocketsphinx.INSTALL_HINT)
    # The recordings three times over (ids of their own): enough batches that both actors
    # are still busy when a node goes.
    rows = [
        row.model_copy(update={"id": f"{copy}/{row.id}"})
        for copy in range(3)
        for row in pocketsphinx.pocketsphinx_rows()
    ]
    manifest = read_manifest(write_manifest(tmp_path / "manifest.jsonl", rows))
    # Ray gives a one-CPU actor one BLAS thread (OMP_NUM_THREADS=1); the local run gets
    # the same, because the features' matrix products sum in another order on two
    # threads, and that last bit tips near-ties in greedy decoding ("selfish, is" on
    # two threads, "selfish is" on one, for one of these clips on this machine's CPU).
    with threadpool_limits(limits=1):
        local = await run_task(
            AsrTask(spec=load_spec(CT2), manifest=manifest),
            folder=RunFolder(tmp_path / "local"),
            batch_size=1,
            progress=False,
        )

    engine = RayEngine(cluster.address)
    folder = RunFolder(tmp_path / "ray")
    run = asyncio.ensure_future(
        run_task(
            AsrTask(spec=load_spec(CT2), manifest=manifest),
            folder=folder,
            batch_size=1,
            progress=False,
            engine=engine,
        )
    )
    # Once both actors are working (rows stored, batches queued), one worker node dies
    # with the batches it holds.
    for _ in range(1200):
        if folder.samples() or run.done():
            break
        await asyncio.sleep(0.1)
    assert not run.done(), "the run ended before a node could be lost"
    workers = list(cluster.worker_nodes)
    assert len(workers) == 2
    cluster.remove_node(workers[0], allow_graceful=False)
    remote = await asyncio.wait_for(run, timeout=300)

    assert engine.requeued >= 1, "the lost node held no batch"
    assert _untimed(remote.metrics) == _untimed(local.metrics)
    assert remote.metrics["samples"] == 30
    assert [s.sample_id for s in remote.samples] == [s.sample_id for s in local.samples]
    for ours, theirs in zip(remote.samples, local.samples, strict=True):
        assert ours.hypothesis == theirs.hypothesis
        assert _untimed(ours.metrics) == _untimed(theirs.metrics)
    # The folder holds each row once (a requeued batch is not stored twice).
    lines = (tmp_path / "ray" / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 30


def _listening_addresses(process: psutil.Process) -> set[str]:
    """The addresses a process and its descendants (a local Ray's services) listen on."""
    try:
        family = {process.pid} | {p.pid for p in process.children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()
    return {
        c.laddr.ip
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in family
    }


def test_a_ray_started_for_a_run_listens_on_loopback_only(tmp_path: Path) -> None:
    """`evals run --engine ray` without `--address` must not put Ray's services on the network."""
    sf.write(str(tmp_path / "clip.wav"), np.zeros(8000, dtype=np.float32), 16_000)
    rows = [
        ManifestRow(
            id=f"clip-{i}",
            audio="clip.wav",
            reference="",
            duration_s=0.5,
            source="t",
            licence="x",
            speech=False,
        )
        for i in range(20)
    ]
    write_manifest(tmp_path / "manifest.jsonl", rows)
    (tmp_path / "fake.yaml").write_text("name: fake-stt\nkind: stt\nbackend: fake\nmodel: fake\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # as a user's shell
    run = subprocess.Popen(
        [
            *(sys.executable, "-m", "evals", "run", "--task", "asr", "--engine", "ray"),
            *("--spec", str(tmp_path / "fake.yaml"), "--dataset", str(tmp_path / "manifest.jsonl")),
            *("--out", str(tmp_path / "run"), "--batch-size", "1"),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    process = psutil.Process(run.pid)
    seen: set[str] = set()
    while run.poll() is None:  # every address Ray listens on while the run lasts
        seen |= _listening_addresses(process)
        time.sleep(0.2)
    output = run.communicate()[0].decode(errors="replace")
    assert run.returncode == 0, output[-3000:]
    assert seen, "found none of Ray's services listening"
    assert seen <= {"127.0.0.1", "::ffff:127.0.0.1"}, seen
