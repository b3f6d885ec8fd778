"""The eval tasks by name, and how each is built from the command line.

`python -m evals run --task NAME` looks the task up here; a new task adds its
builder below (and its module in `evals/tasks/`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

from evals.tasks.base import Task
from workbench.auth.tokens import AccessClaims
from workbench.config import get_settings
from workbench.db.connection import rls_session


@dataclass(frozen=True)
class ActingUser:
    """The connection and claims of the user a CLI run acts as (under RLS)."""

    conn: AsyncConnection[Any]
    claims: AccessClaims


@asynccontextmanager
async def acting_user(email: str | None) -> AsyncIterator[ActingUser | None]:
    """With --as: one connection, acting as that user under RLS, for the whole run."""
    if not email:
        yield None
        return
    import psycopg

    from workbench.db.connection import claims_for_user, database_url

    url = database_url(get_settings())
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        yield ActingUser(conn, await claims_for_user(conn, email))


Builder = Callable[[argparse.Namespace, ActingUser | None], Awaitable[Task[Any]]]


def _manifest(args: argparse.Namespace) -> Any:
    from workbench_datasets.manifest import read_manifest

    if args.dataset is None:
        raise ValueError(f"--task {args.task} needs --dataset MANIFEST")
    manifest = read_manifest(args.dataset)
    for problem in manifest.problems:
        print(f"skipped {problem}", file=sys.stderr)
    return manifest.first(args.limit) if args.limit else manifest


async def _asr(args: argparse.Namespace, _user: ActingUser | None) -> Task[Any]:
    from evals.tasks.asr import AsrTask
    from workbench.models import load_spec

    if args.spec is None:
        raise ValueError("--task asr needs --spec STT_SPEC")
    return AsrTask(
        spec=load_spec(args.spec),
        manifest=_manifest(args),
        include_live_transcripts=getattr(args, "reference", "human") == "live",
    )


async def _latency(args: argparse.Namespace, _user: ActingUser | None) -> Task[Any]:
    from evals.tasks.latency import LatencyTask
    from workbench.models.stack import load_stack

    if args.stack is None:
        raise ValueError("--task latency needs --stack STACK_SPEC")
    return LatencyTask(stack=load_stack(args.stack), manifest=_manifest(args))


async def _prompt_quality(args: argparse.Namespace, user: ActingUser | None) -> Task[Any]:
    from evals.tasks.prompt_quality import PromptQualityTask, PromptVariant, variants_from_versions
    from workbench.models import load_spec
    from workbench_datasets.dialogues import read_dialogues

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
        if user is None:
            raise ValueError("--prompt-version reads Supabase: give --as EMAIL")
        values = dict(v.partition("=")[::2] for v in args.var)
        by_slug: dict[str, list[int]] = {}
        for ref in args.prompt_version:
            slug, _, number = ref.rpartition(":")
            if not slug or not number.isdigit():
                raise ValueError(f"--prompt-version {ref!r}: use SLUG:N")
            by_slug.setdefault(slug, []).append(int(number))
        for slug, numbers in by_slug.items():
            async with rls_session(user.conn, user.claims):
                variants += await variants_from_versions(user.conn, slug, numbers, values=values)
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


async def _turn_taking(args: argparse.Namespace, _user: ActingUser | None) -> Task[Any]:
    from evals.tasks.turn_taking import TurnTakingTask
    from workbench.models import load_spec
    from workbench.models.stack import load_stack

    stt = load_stack(args.stack).stt if args.stack else load_spec(args.spec) if args.spec else None
    return TurnTakingTask(manifest=_manifest(args), stt=stt)


TASKS: dict[str, Builder] = {
    "asr": _asr,
    "latency": _latency,
    "prompt_quality": _prompt_quality,
    "turn_taking": _turn_taking,
}
