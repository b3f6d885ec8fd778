"""`python -m evals simulate`: run a suite's simulated callers against the live stack.

Checks the suite before any room opens, makes the simulation accounts (one per
call held at once), runs the suite as an eval task (resumable run folder, rows
in Supabase with `--as`, a progress bar), prints each call's verdict and exits 1
when a required scenario did not pass or the suite's pass rate was missed.
`--engine ray` places the calls from Ray actors (one per call held at once, over
the cluster's nodes); every node must reach the stack's LiveKit and database.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

from evals.run_folder import RunFolder
from evals.runner import DatabaseSink, run_task
from evals.simulation.accounts import simulation_accounts
from evals.simulation.call import CallSetup
from evals.simulation.suite import SuiteError, load_suite
from evals.simulation.task import SimulationTask, run_failed
from evals.simulation.units import CALLS_FOLDER
from evals.tasks.registry import acting_user
from workbench.config import get_settings
from workbench.db.connection import database_url
from workbench.db.models import EvalSample


async def simulate(args: argparse.Namespace) -> int:
    """Run the suite; the exit status (0 passed, 1 failed, 2 could not run)."""
    if args.runs < 1 or args.concurrency < 1:
        print("error: --runs and --concurrency must be at least 1", file=sys.stderr)
        return 2
    try:
        suite = load_suite(args.suite)
    except SuiteError as exc:
        print(f"error: the suite cannot run:\n{exc}", file=sys.stderr)
        return 2
    try:
        slug, version = prompt_choice(args.prompt)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = get_settings()
    stack = args.stack or settings.default_stack
    async with await psycopg.AsyncConnection.connect(
        database_url(settings), autocommit=True
    ) as conn:
        accounts = await simulation_accounts(settings, conn, args.concurrency)
    out: Path = args.out or settings.data_dir / "simulations" / (
        f"{suite.name}-{stack}-{(args.prompt or 'default-prompt').replace('@', '-v')}"
    )
    task = SimulationTask(
        suite=suite,
        setup=CallSetup(settings, stack=stack, prompt=slug, prompt_version=version),
        accounts=accounts,
        runs=args.runs,
        audio_dir=out / CALLS_FOLDER,
    )
    engine, batch_size = None, args.concurrency
    if args.engine == "ray":
        from evals.ray_engine import RayEngine

        # One actor per call held at once, each with an account of its own (see
        # SimulationTask.for_worker), placing its calls one after another.
        engine, batch_size = RayEngine(args.address, actors=args.concurrency, actor_cpus=0.25), 1
    async with acting_user(args.email) as user:
        sink = DatabaseSink(user.conn, user.claims) if user else None
        result = await run_task(
            task, folder=RunFolder(out), sink=sink, batch_size=batch_size, engine=engine
        )
    print(verdicts(result.samples))
    print(f"run {result.info.run_id} in {out}")
    reasons = run_failed(result.metrics)
    for reason in reasons:
        print(f"FAILED: {reason}", file=sys.stderr)
    return 1 if reasons else 0


def prompt_choice(value: str | None) -> tuple[str | None, int | None]:
    """`SLUG` or `SLUG@VERSION` as (slug, version)."""
    if not value:
        return None, None
    slug, _, version = value.partition("@")
    if not version:
        return slug, None
    if not version.isdigit() or int(version) < 1:
        raise ValueError(f"--prompt {value!r}: the version after @ is a positive number")
    return slug, int(version)


def verdicts(samples: list[EvalSample]) -> str:
    """One line per call: PASS, FAIL with what failed, or ERROR with why."""
    lines = []
    for sample in samples:
        if sample.error is not None:
            lines.append(f"ERROR {sample.sample_id}: {sample.error}")
        elif sample.metrics.get("passed") == 1.0:
            lines.append(f"PASS  {sample.sample_id}")
        else:
            lines.append(f"FAIL  {sample.sample_id}: " + "; ".join(sample.metrics["failed"]))
    return "\n".join(lines)
