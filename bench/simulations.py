"""Simulated callers against the running stack at several concurrencies: throughput and heard latency.

For each concurrency it runs the suite (`--runs` calls per scenario) into a
fresh run folder and prints: calls, wall time, scenarios per hour, the agent's
heard voice-to-voice p50/p95 over every turn, pass rate and mean live WER; then,
per caller condition (clean, noisy phone line, mid-sentence pause, ...), the
live WER of the agent's STT next to the offline WER of the same audio (the
caller's turns rendered again with the same seed and transcribed by the stack's
STT spec in this process): what the live path costs in recognition.

    ./dev up
    ./dev bench bench/simulations.py --concurrency 1 --concurrency 2 --concurrency 4

`--engine ray` (or `both`) places the same calls from Ray actors on Ray's
multi-node harness started for the bench (`--nodes` worker nodes on loopback,
a head without CPUs), one caller actor per call held at once: the wall time of a
many-scenario run there against this process, e.g. 100 calls:

    ./dev bench bench/simulations.py --suite suites/quick.yaml --runs 50 --concurrency 2 --engine both
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evals.ray_engine import RayEngine, keep_ray_on_loopback, loopback_cluster
from evals.run_folder import RunFolder
from evals.runner import Engine, run_task
from evals.simulation.accounts import simulation_accounts
from evals.simulation.call import CallSetup
from evals.simulation.suite import PAUSE_MARK, Scenario, Suite, load_suite
from evals.simulation.task import SimulationTask
from evals.simulation.units import CALLS_FOLDER, scenario_of
from stack.instances import require_test_instance
from workbench.audio import SPEECH_RATE_HZ, resample
from workbench.config import get_settings
from workbench.db.connection import database_url
from workbench.db.models import EvalSample
from workbench.metrics.wer import error_rates
from workbench.models.base import SpeechToText
from workbench.models.registry import load_model
from workbench.models.stack import STACKS_DIR, load_stack


def condition(scenario: Scenario) -> str:
    """A short name for the caller's line."""
    persona = scenario.caller
    parts = []
    if persona.noise:
        parts.append(f"{persona.noise.kind} noise {persona.noise.snr_db:.0f} dB")
    if persona.telephone:
        parts.append("phone band")
    if persona.rate != 1.0:
        parts.append(f"rate {persona.rate}")
    if any(PAUSE_MARK in t.say for t in scenario.turns):
        parts.append("mid-sentence pause")
    if persona.barge_in:
        parts.append("barge-in")
    return ", ".join(parts) or "clean"


async def offline_wer(
    folder: Path, samples: list[EvalSample], suite: Suite, stt: SpeechToText
) -> dict[str, tuple[int, int]]:
    """(word errors, reference words) per condition: each caller turn cut from the call's
    recording (the caller's channel, as it was sent) and transcribed offline."""
    by_id = {s.id: s for s in suite.scenarios}
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for sample in samples:
        if sample.error is not None or "audio" not in sample.metrics:
            continue
        audio, hz = soundfile.read(folder / CALLS_FOLDER / sample.metrics["audio"], dtype="float32")
        for turn in sample.metrics["dialogue"]:
            start, end = turn["started_s"], turn["words_end_s"] + 0.3
            caller = audio[int(start * hz) : int(end * hz), 0]
            speech = np.pad(resample(caller, hz, SPEECH_RATE_HZ), (0, SPEECH_RATE_HZ // 2))
            heard = (await stt.transcribe(speech, language="en")).text
            rates = error_rates([turn["caller"]], [heard])
            name = condition(by_id[scenario_of(sample.sample_id)])
            totals[name][0] += rates.substitutions + rates.deletions + rates.insertions
            totals[name][1] += rates.reference_words
    return {name: (e, n) for name, (e, n) in totals.items()}


def live_wer(samples: list[EvalSample], suite: Suite) -> dict[str, tuple[float, int]]:
    """Mean live WER of the calls held, per condition (and how many calls)."""
    by_id = {s.id: s for s in suite.scenarios}
    found: dict[str, list[float]] = defaultdict(list)
    for sample in samples:
        if sample.error is None and sample.metrics.get("live_wer") is not None:
            found[condition(by_id[scenario_of(sample.sample_id)])].append(
                sample.metrics["live_wer"]
            )
    return {name: (float(np.mean(v)), len(v)) for name, v in found.items()}


def ray_harness(nodes: int) -> Any:
    """Ray's multi-node harness on loopback for the bench, shut down when it exits."""
    keep_ray_on_loopback()
    cluster = loopback_cluster(nodes)
    atexit.register(cluster.shutdown)
    return cluster


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default="suites/smoke.yaml")
    parser.add_argument("--concurrency", type=int, action="append")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("data/bench/simulations"))
    parser.add_argument("--engine", choices=["local", "ray", "both"], default="local")
    parser.add_argument("--nodes", type=int, default=2, help="ray: worker nodes of the harness")
    args = parser.parse_args()
    settings = get_settings()
    require_test_instance(settings, "bench/simulations.py")
    suite = load_suite(args.suite)
    levels = args.concurrency or [1, 2]
    async with await psycopg.AsyncConnection.connect(database_url(settings), autocommit=True) as c:
        accounts = await simulation_accounts(settings, c, max(levels))
    engines = ["local", "ray"] if args.engine == "both" else [args.engine]
    cluster = ray_harness(args.nodes) if "ray" in engines else None
    rows, runs = [], []
    for engine_name, level in [(e, level) for level in levels for e in engines]:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = args.out / f"{suite.name}-{engine_name}-c{level}-{stamp}"
        task = SimulationTask(
            suite=suite,
            setup=CallSetup(settings),
            accounts=accounts[:level],
            runs=args.runs,
            audio_dir=folder / CALLS_FOLDER,
        )
        engine: Engine | None = None
        batch_size = level
        if engine_name == "ray":
            assert cluster is not None
            engine = RayEngine(cluster.address, actors=level, actor_cpus=0.25)
            batch_size = 1  # one call at a time per actor, `level` actors
        started = time.monotonic()
        result = await run_task(
            task, folder=RunFolder(folder), batch_size=batch_size, engine=engine
        )
        wall = time.monotonic() - started
        heard = result.metrics["heard_v2v_s"]
        rows.append(
            f"| {engine_name} | {level} | {len(result.samples)} | {wall:.0f} | "
            f"{len(result.samples) / wall * 3600:.0f} | {heard['p50']:.2f} / {heard['p95']:.2f} | "
            f"{result.metrics['pass_rate']:.0%} | {len(result.metrics['errored'])} | "
            f"{result.metrics['live_wer_mean']:.3f} |"
        )
        runs.append((folder, result.samples))
        print(rows[-1], flush=True)  # each level as it finishes (the table follows at the end)
    stt = load_model(load_stack(STACKS_DIR / f"{settings.default_stack}.yaml").stt)
    assert isinstance(stt, SpeechToText)
    offline: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for folder, samples in runs:
        for name, (errors, words) in (await offline_wer(folder, samples, suite, stt)).items():
            offline[name][0] += errors
            offline[name][1] += words
    live = live_wer([s for _, samples in runs for s in samples], suite)
    print(f"\n{suite.name} on {settings.default_stack}, {args.runs} call(s) per scenario\n")
    print(
        "| engine | concurrency | calls | wall s | scenarios / h | heard v2v p50 / p95 s | pass | errored | live WER |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nlive vs offline WER of the same caller audio ({stt.spec.name})\n")
    print("| caller condition | calls | live WER (mean per call) | offline WER |")
    print("|---|---|---|---|")
    for name in sorted(offline):
        errors, words = offline[name]
        mean, calls = live.get(name, (float("nan"), 0))
        print(f"| {name} | {calls} | {mean:.3f} | {errors / max(words, 1):.3f} |")


if __name__ == "__main__":
    asyncio.run(main())
