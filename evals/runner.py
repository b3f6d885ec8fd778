"""Run a task over its dataset: batches, progress, resume, JSONL and (optionally) Supabase rows.

    result = await run_task(task, folder=RunFolder(path), sink=DatabaseSink(...), batch_size=8)

The JSONL folder is the source of truth; the database gets the same rows
batch by batch (upserts, so a resumed batch replaces itself) and the run row
is closed with the corpus metrics. Ctrl-C marks the run `interrupted`; a
SIGKILL leaves it `running`; either way the same command with the same folder
continues where it stopped.

Where batches are scored is the engine's business: `LocalEngine` (this
process, the default) or `evals.ray_engine.RayEngine` (model-holding actors on
a Ray cluster). Either way the rows come back here, in whatever order the
batches finish, and are stored the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from psycopg import AsyncConnection
from tqdm import tqdm

from evals.run_folder import RunFolder, RunInfo, new_run_info
from evals.tasks.base import Task
from workbench.auth.tokens import AccessClaims
from workbench.db.connection import rls_session
from workbench.db.models import EvalSample
from workbench.db.repositories import EvalsRepo


class Sink(Protocol):
    """Where rows go besides the run folder."""

    async def open(self, info: RunInfo) -> None: ...
    async def add(self, samples: Sequence[EvalSample]) -> None: ...
    async def close(self, *, status: str, metrics: dict[str, Any]) -> None: ...


class DatabaseSink:
    """Writes `eval_runs` / `eval_samples` acting as a user (a researcher) under RLS."""

    def __init__(self, conn: AsyncConnection[Any], claims: AccessClaims) -> None:
        self._conn = conn
        self._claims = claims
        self._run_id: UUID | None = None

    def _session(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        return rls_session(self._conn, self._claims)

    async def open(self, info: RunInfo) -> None:
        async with self._session() as conn:
            run = await EvalsRepo(conn).open_run(
                run_id=info.run_id,
                task=info.task,
                task_version=info.task_version,
                dataset_id=info.dataset_id,
                spec=info.spec,
                git_sha=info.git_sha,
            )
        self._run_id = run.id

    async def add(self, samples: Sequence[EvalSample]) -> None:
        assert self._run_id is not None, "open() first"
        async with self._session() as conn:
            await EvalsRepo(conn).add_samples(self._run_id, samples)

    async def close(self, *, status: str, metrics: dict[str, Any]) -> None:
        assert self._run_id is not None, "open() first"
        async with self._session() as conn:
            await EvalsRepo(conn).finish_run(self._run_id, status=status, metrics=metrics)


class Engine(Protocol):
    """Scores batches of a task's items somewhere and hands back each batch's rows as it finishes."""

    def scored(
        self, task: Task[Any], batches: Sequence[Sequence[Any]]
    ) -> AsyncIterator[tuple[Sequence[Any], list[EvalSample]]]:
        """(batch, its rows) for every batch, in the order they finish; loads models as needed."""
        ...


class LocalEngine:
    """Every batch in this process, one after another (the default)."""

    async def scored(
        self, task: Task[Any], batches: Sequence[Sequence[Any]]
    ) -> AsyncIterator[tuple[Sequence[Any], list[EvalSample]]]:
        if batches:
            task.load()
        for batch in batches:
            yield batch, await task.score(batch)


@dataclass(frozen=True)
class RunResult:
    """A finished run."""

    info: RunInfo
    metrics: dict[str, Any]
    samples: list[EvalSample]
    resumed_from: int  # samples already done when this call started


async def run_task(
    task: Task[Any],
    *,
    folder: RunFolder,
    sink: Sink | None = None,
    batch_size: int = 8,
    progress: bool = True,
    engine: Engine | None = None,
) -> RunResult:
    """Score every item not yet in `folder` (on `engine`, default this process), then summarise all rows."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    info = folder.start(
        new_run_info(
            task=task.name,
            task_version=task.version,
            dataset_id=task.dataset_id,
            spec=task.spec_snapshot(),
        )
    )
    task.begin(info)
    done = {s.sample_id for s in folder.samples()}
    # An item is done when any of its rows is stored (a task may write several per item).
    done_items = {task.item_of(sample_id) for sample_id in done}
    todo = [item for item in task.items if task.item_id(item) not in done_items]
    if sink is not None:
        await sink.open(info)
        if done:
            await sink.add(folder.samples())  # rows a killed run wrote before its DB batch
    status = "failed"
    metrics: dict[str, Any] = {}
    samples: list[EvalSample] = []
    batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
    try:
        with tqdm(
            total=len(task.items),
            initial=len(task.items) - len(todo),
            desc=f"{task.name} {info.dataset_id}",
            unit="sample",
            disable=not progress,
        ) as bar:
            async for batch, samples in (engine or LocalEngine()).scored(task, batches):
                folder.append(samples)
                if sink is not None:
                    await sink.add(samples)
                bar.update(len(batch))
        # In the items' order whatever order batches finished in (an engine may score
        # them in parallel): bootstrap intervals resample by position.
        position = {task.item_id(item): i for i, item in enumerate(task.items)}
        samples = sorted(
            folder.samples(),
            key=lambda s: position.get(task.item_of(s.sample_id), len(position)),
        )
        metrics = task.summarise(samples)
        folder.write_metrics(metrics)
        status = "completed"
    except (KeyboardInterrupt, SystemExit, asyncio.CancelledError):
        # Ctrl-C under asyncio.run arrives here as the main task's cancellation.
        status = "interrupted"
        raise
    finally:
        if sink is not None:
            await sink.close(status=status, metrics=metrics)
        await task.aclose()
    return RunResult(info=info, metrics=metrics, samples=samples, resumed_from=len(done))
