"""ASR replay throughput, local engine vs Ray with 1 and 2 worker nodes, printed as a table.

Same task (Whisper tiny.en, CTranslate2 int8), same clips (Debian's
pocketsphinx-testdata recordings repeated), same machine. The Ray cluster is
started for the run on loopback (Ray's multi-node harness: a head without CPUs
and N worker nodes, one actor each). RTFx here is seconds of audio per second
of wall clock for the whole run, model loading and dispatch included (the
runner's own `rtfx` metric sums per-clip compute and would hide both).

    ./dev python bench/eval_engines.py [--repeat 6] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from evals.ray_engine import RayEngine, keep_ray_on_loopback, loopback_cluster  # noqa: E402

keep_ray_on_loopback()

from eval_throughput import repeated_manifest  # noqa: E402

from evals.run_folder import RunFolder  # noqa: E402
from evals.runner import Engine, run_task  # noqa: E402
from evals.tasks.asr import AsrTask  # noqa: E402
from workbench.models import ModelSpec, load_spec  # noqa: E402
from workbench_datasets.manifest import read_manifest  # noqa: E402

SPEC = ROOT / "configs" / "models" / "whisper-tiny-en-ct2.yaml"


async def timed_run(
    manifest: Path, spec: ModelSpec, out: Path, batch_size: int, engine: Engine | None
) -> tuple[float, float, float]:
    """(audio s, wall s, WER) of one run."""
    started = time.perf_counter()
    result = await run_task(
        AsrTask(spec=spec, manifest=read_manifest(manifest)),
        folder=RunFolder(out),
        batch_size=batch_size,
        progress=False,
        engine=engine,
    )
    return result.metrics["audio_s"], time.perf_counter() - started, result.metrics["wer"]


def on_ray(workers: int, run: Any) -> tuple[float, float, float]:
    """`run(engine)` against a fresh loopback cluster of `workers` one-CPU nodes."""
    cluster = loopback_cluster(workers)
    try:
        result: tuple[float, float, float] = asyncio.run(run(RayEngine(cluster.address)))
        return result
    finally:
        cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=6, help="copies of the 10 recordings")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    spec = load_spec(SPEC)
    one_thread = spec.model_copy(update={"params": {**spec.params, "cpu_threads": 1}})
    rows: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        manifest = repeated_manifest(folder, args.repeat)
        configs: list[tuple[str, ModelSpec, int]] = [
            ("local, 2 threads", spec, 0),
            ("Ray, 1 worker node (2 threads)", spec, 1),
            ("Ray, 2 worker nodes (2 threads each)", spec, 2),
            ("Ray, 2 worker nodes (1 thread each)", one_thread, 2),
            ("local, 2 threads, again (warm file cache)", spec, 0),
        ]
        for n, (label, chosen, workers) in enumerate(configs):
            out = folder / f"run{n}"

            async def run(
                engine: Engine | None, chosen: ModelSpec = chosen, out: Path = out
            ) -> Any:
                return await timed_run(manifest, chosen, out, args.batch_size, engine)

            audio_s, wall_s, wer = asyncio.run(run(None)) if not workers else on_ray(workers, run)
            rows.append((label, audio_s, wall_s, wer))
            print(f"{label}: {audio_s / wall_s:.1f}x", file=sys.stderr)
    print(f"\n{args.repeat * 10} clips, batch {args.batch_size}, whisper-tiny-en-ct2 int8\n")
    print("| engine | audio s | wall s | RTFx (wall) | WER |")
    print("|---|---|---|---|---|")
    for label, audio_s, wall_s, wer in rows:
        print(f"| {label} | {audio_s:.1f} | {wall_s:.1f} | {audio_s / wall_s:.1f} | {wer:.3f} |")


if __name__ == "__main__":
    main()
