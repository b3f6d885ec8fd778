"""`python -m evals run|compare|show`: replay datasets through model specs and compare runs.

    python -m evals run --task asr --spec configs/models/whisper-tiny-en-hf.yaml \\
        --dataset data/datasets/pocketsphinx/manifest.jsonl --out data/evals/asr-hf
    python -m evals run --task latency --stack configs/stacks/cpu-small.yaml --dataset ...
    python -m evals run --task prompt_quality --spec configs/models/smollm2-135m-instruct.yaml \\
        --judge configs/models/smollm2-135m-instruct.yaml --dialogues datasets/samples/dialogues.jsonl \\
        --prompt a=prompts/a.txt --prompt b=prompts/b.txt
    python -m evals compare data/evals/asr-ct2 data/evals/asr-hf
    python -m evals show data/evals/asr-hf

`run` resumes when `--out` already holds the same run. With `--as EMAIL` the
run is also written to Supabase (`eval_runs`, `eval_samples`) as that user.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from evals.compare import compare_runs, format_comparison
from evals.run_folder import RunFolder
from evals.runner import DatabaseSink, RunResult, run_task
from evals.tasks.base import Task
from workbench.config import get_settings


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m evals", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a task (resumes an existing --out)")
    run.add_argument("--task", required=True, choices=["asr", "latency", "prompt_quality"])
    run.add_argument("--spec", type=Path, help="model spec (asr: STT; prompt_quality: LLM)")
    run.add_argument("--stack", type=Path, help="stack spec (latency)")
    run.add_argument("--dataset", type=Path, help="manifest.jsonl (asr, latency)")
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
    compare = commands.add_parser("compare", help="compare two run folders (bootstrap CIs)")
    compare.add_argument("baseline", type=Path)
    compare.add_argument("candidate", type=Path)
    show = commands.add_parser("show", help="print a run's metrics")
    show.add_argument("run", type=Path)
    args = parser.parse_args(argv)

    if args.command == "compare":
        print(format_comparison(compare_runs(RunFolder(args.baseline), RunFolder(args.candidate))))
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
        task = build_task(args)
    except (ValueError, FileNotFoundError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = (
        args.out
        or get_settings().data_dir / "evals" / f"{task.name}-{task.dataset_id.replace('@', '-')}"
    )
    result = asyncio.run(_run(task, out, args))
    print(f"run {result.info.run_id} in {out}")
    print(json.dumps(result.metrics, indent=2))
    return 0


def build_task(args: argparse.Namespace) -> Task[Any]:
    """The task the arguments describe, its dataset read and checked."""
    from workbench.models import load_spec

    if args.task in ("asr", "latency"):
        from datasets.manifest import read_manifest

        if args.dataset is None:
            raise ValueError(f"--task {args.task} needs --dataset MANIFEST")
        manifest = read_manifest(args.dataset)
        for problem in manifest.problems:
            print(f"skipped {problem}", file=sys.stderr)
        if args.limit:
            manifest = _first(manifest, args.limit)
        if args.task == "asr":
            from evals.tasks.asr import AsrTask

            if args.spec is None:
                raise ValueError("--task asr needs --spec STT_SPEC")
            return AsrTask(spec=load_spec(args.spec), manifest=manifest)
        from evals.tasks.latency import LatencyTask
        from workbench.models.stack import load_stack

        if args.stack is None:
            raise ValueError("--task latency needs --stack STACK_SPEC")
        return LatencyTask(stack=load_stack(args.stack), manifest=manifest)

    from datasets.dialogues import read_dialogues
    from evals.tasks.prompt_quality import PromptQualityTask, PromptVariant

    if args.dialogues is None or args.spec is None or args.judge is None:
        raise ValueError("--task prompt_quality needs --dialogues, --spec (the LLM) and --judge")
    dataset_id, dialogues, problems = read_dialogues(args.dialogues)
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    variants = []
    for value in args.prompt:
        label, _, path = value.partition("=")
        variants.append(PromptVariant(label=label, system_prompt=Path(path).read_text().strip()))
    if args.prompt_version:
        variants += asyncio.run(_stored_variants(args))
    if len(variants) < 2:
        raise ValueError(
            "--task prompt_quality compares two or more prompts: --prompt LABEL=FILE or --prompt-version SLUG:N"
        )
    return PromptQualityTask(
        llm=load_spec(args.spec),
        judge=load_spec(args.judge),
        embedder=load_spec(args.embedder or Path("configs/models/minilm-l6-v2.yaml")),
        variants=variants,
        dialogues=dialogues[: args.limit] if args.limit else dialogues,
        dataset_id=dataset_id,
    )


def _first(manifest: Any, limit: int) -> Any:
    from dataclasses import replace

    from datasets.manifest import dataset_id, dataset_name

    rows = manifest.rows[:limit]
    return replace(manifest, rows=rows, dataset_id=dataset_id(dataset_name(manifest.path), rows))


async def _stored_variants(args: argparse.Namespace) -> list[Any]:
    import psycopg

    from evals.tasks.prompt_quality import variants_from_versions
    from workbench.db.connection import claims_for_user, database_url, rls_session

    if not args.email:
        raise ValueError("--prompt-version reads Supabase: give --as EMAIL")
    values = dict(v.partition("=")[::2] for v in args.var)
    by_slug: dict[str, list[int]] = {}
    for ref in args.prompt_version:
        slug, _, number = ref.rpartition(":")
        if not slug or not number.isdigit():
            raise ValueError(f"--prompt-version {ref!r}: use SLUG:N")
        by_slug.setdefault(slug, []).append(int(number))
    url = database_url(get_settings())
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        claims = await claims_for_user(conn, args.email)
        variants = []
        for slug, numbers in by_slug.items():
            async with rls_session(conn, claims):
                variants += await variants_from_versions(conn, slug, numbers, values=values)
        return variants


async def _run(task: Task[Any], out: Path, args: argparse.Namespace) -> RunResult:
    if not args.email:
        return await run_task(task, folder=RunFolder(out), batch_size=args.batch_size)
    import psycopg

    from workbench.db.connection import claims_for_user, database_url

    url = database_url(get_settings())
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        sink = DatabaseSink(conn, await claims_for_user(conn, args.email))
        return await run_task(task, folder=RunFolder(out), sink=sink, batch_size=args.batch_size)


if __name__ == "__main__":
    raise SystemExit(main())
