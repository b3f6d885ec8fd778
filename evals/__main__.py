"""`python -m evals run|compare|show`: replay datasets through model specs and compare runs.

    python -m evals run --task asr --spec configs/models/whisper-tiny-en-hf.yaml \\
        --dataset data/datasets/pocketsphinx/manifest.jsonl --out data/evals/asr-hf
    python -m evals run --task latency --stack configs/stacks/cpu-small.yaml --dataset ...
    python -m evals run --task prompt_quality --spec configs/models/smollm2-135m-instruct.yaml \\
        --judge configs/models/smollm2-135m-instruct.yaml --dialogues datasets/samples/dialogues.jsonl \\
        --prompt a=prompts/a.txt --prompt b=prompts/b.txt
    python -m evals compare data/evals/asr-ct2 data/evals/asr-hf
    python -m evals show data/evals/asr-hf
    python -m evals report data/evals/asr-ct2 data/evals/asr-hf --as researcher@workbench.local
    python -m evals simulate --suite suites/smoke.yaml --stack cpu-small --concurrency 2

`run` and `simulate` resume when `--out` already holds the same run; `simulate`
exits 1 when a required scenario fails (or the suite's pass rate is missed). With `--as EMAIL` the
run is also written to Supabase (`eval_runs`, `eval_samples`) as that user.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from evals.compare import compare_runs, format_comparison
from evals.run_folder import RunFolder
from evals.runner import DatabaseSink, RunResult, run_task
from evals.tasks.registry import TASKS, acting_user
from workbench.config import get_settings


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m evals", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a task (resumes an existing --out)")
    run.add_argument("--task", required=True, choices=sorted(TASKS))
    run.add_argument(
        "--spec", type=Path, help="model spec (asr, turn_taking: STT; prompt_quality: LLM)"
    )
    run.add_argument("--stack", type=Path, help="stack spec (latency; turn_taking: its STT)")
    run.add_argument("--dataset", type=Path, help="manifest.jsonl (asr, latency, turn_taking)")
    run.add_argument(
        "--reference",
        choices=["human", "live"],
        default="human",
        help="asr: score against human corrections only (default), or live transcripts too",
    )
    run.add_argument("--dialogues", type=Path, help="dialogues.jsonl (prompt_quality)")
    run.add_argument("--judge", type=Path, help="judge LLM spec (prompt_quality)")
    run.add_argument("--embedder", type=Path, help="sentence-embedding spec (prompt_quality)")
    run.add_argument(
        "--prompt", action="append", default=[], help="LABEL=FILE system prompt (repeatable)"
    )
    run.add_argument(
        "--prompt-version",
        action="append",
        default=[],
        help="SLUG:N stored prompt version (repeatable; needs --as)",
    )
    run.add_argument(
        "--var", action="append", default=[], help="NAME=VALUE for prompt {{variables}}"
    )
    run.add_argument("--out", type=Path, help="run folder (default: data/evals/<task>-<dataset>)")
    run.add_argument("--batch-size", type=int, default=8)
    run.add_argument("--limit", type=int, help="only the first N items")
    run.add_argument("--as", dest="email", help="also write the run to Supabase as this user")
    run.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="where batches are scored: this process (default) or actors on a Ray cluster",
    )
    run.add_argument(
        "--address", help="ray: the cluster's head (HOST:PORT, ray://..., auto); default: start one"
    )
    run.add_argument(
        "--actors", type=int, help="ray: how many (default: one per GPU, else per node)"
    )
    compare = commands.add_parser("compare", help="compare two run folders (bootstrap CIs)")
    compare.add_argument("baseline", type=Path)
    compare.add_argument("candidate", type=Path)
    show = commands.add_parser("show", help="print a run's metrics")
    show.add_argument("run", type=Path)
    report = commands.add_parser(
        "report", help="a self-contained HTML report of runs (the first is the baseline)"
    )
    report.add_argument("runs", type=Path, nargs="+")
    report.add_argument("--out", type=Path, help="HTML file (default: data/reports/...)")
    report.add_argument("--title")
    report.add_argument(
        "--as", dest="email", help="also store it (bucket reports) as this researcher"
    )
    _add_simulate(commands)
    args = parser.parse_args(argv)
    if args.command == "simulate":
        from evals.simulation.cli import simulate

        try:
            return asyncio.run(simulate(args))
        except KeyboardInterrupt:
            print("interrupted: the same command resumes the run", file=sys.stderr)
            return 130

    if args.command == "compare":
        print(format_comparison(compare_runs(RunFolder(args.baseline), RunFolder(args.candidate))))
        return 0
    if args.command == "report":
        try:
            print(asyncio.run(_report(args)))
        except (ValueError, FileNotFoundError, LookupError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "show":
        folder = RunFolder(args.run)
        print(
            json.dumps(
                {"run": folder.read_info().__dict__, "metrics": folder.read_metrics()},
                indent=2,
                default=str,
            )
        )
        return 0
    try:
        result, out = asyncio.run(_run(args))
    except (ValueError, FileNotFoundError, TypeError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"run {result.info.run_id} in {out}")
    print(json.dumps(result.metrics, indent=2))
    return 0


def _add_simulate(commands: Any) -> None:
    sim = commands.add_parser(
        "simulate", help="call the live agent with a suite's simulated callers, judge each call"
    )
    sim.add_argument("--suite", type=Path, required=True, help="suite YAML (see suites/)")
    sim.add_argument("--stack", help="model stack to call (default: the web app's default)")
    sim.add_argument(
        "--prompt",
        help="SLUG or SLUG@VERSION (a draft too) the agent uses (default: what users get)",
    )
    sim.add_argument("--runs", type=int, default=1, help="calls per scenario")
    sim.add_argument("--concurrency", type=int, default=1, help="calls held at once")
    sim.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="where callers run: this process (default) or one Ray actor per call held at once",
    )
    sim.add_argument(
        "--address", help="ray: the cluster's head (HOST:PORT, ray://..., auto); default: start one"
    )
    sim.add_argument("--out", type=Path, help="run folder (default: data/simulations/...)")
    sim.add_argument("--as", dest="email", help="also write the run to Supabase as this user")


async def _report(args: argparse.Namespace) -> str:
    """Write the report; with --as also store it. Returns where it went."""
    from evals.report import build_report

    page = build_report([RunFolder(run) for run in args.runs], title=args.title)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    name = f"report-{stamp}-{'-'.join(run.name for run in args.runs)}"[:120] + ".html"
    out = args.out or get_settings().data_dir / "reports" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    where = f"report in {out}"
    if args.email:
        from workbench.db.connection import rls_session
        from workbench.storage import open_store

        settings = get_settings()
        if settings.storage_url is None:
            raise ValueError("no STORAGE_URL configured: the report was only written to disk")
        async with acting_user(args.email) as user:
            assert user is not None
            assert user.claims.sub is not None, "claims_for_user gives a user's claims"
            async with rls_session(user.conn, user.claims):
                stored = await open_store(settings).put(
                    user.conn,
                    bucket="reports",
                    owner_id=UUID(user.claims.sub),
                    name=name,
                    data=page.encode(),
                    content_type="text/html",
                )
        where += f"; stored as reports/{stored.path} (listed on the Analytics page)"
    return where


async def _run(args: argparse.Namespace) -> tuple[RunResult, Path]:
    async with acting_user(args.email) as user:
        task = await TASKS[args.task](args, user)
        out = (
            args.out
            or get_settings().data_dir
            / "evals"
            / f"{task.name}-{task.dataset_id.replace('@', '-')}"
        )
        sink = DatabaseSink(user.conn, user.claims) if user else None
        engine = None
        if args.engine == "ray":
            from evals.ray_engine import RayEngine

            engine = RayEngine(args.address, actors=args.actors)
        result = await run_task(
            task, folder=RunFolder(out), sink=sink, batch_size=args.batch_size, engine=engine
        )
        return result, out


if __name__ == "__main__":
    raise SystemExit(main())
