"""Eval runs and their samples (researchers, under RLS)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from workbench.db.errors import translated
from workbench.db.models import (
    EvalRun,
    EvalSample,
    StoredObject,
)
from workbench.db.repositories._base import Repo

_RUN = "id, task, task_version, dataset_id, spec, git_sha, status, metrics, started_at, finished_at"


class EvalsRepo(Repo):
    """Eval runs and their samples."""

    async def open_run(
        self,
        *,
        run_id: UUID,
        task: str,
        task_version: str,
        dataset_id: str,
        spec: dict[str, Any],
        git_sha: str | None,
    ) -> EvalRun:
        """Open a run with a client-chosen id, or reopen it (status `running`) when resuming."""
        return await self._one(
            EvalRun,
            f"""insert into public.eval_runs (id, task, task_version, dataset_id, spec, git_sha)
                values (%s, %s, %s, %s, %s, %s)
                on conflict (id) do update set status = 'running', finished_at = null
                returning {_RUN}""",
            [run_id, task, task_version, dataset_id, Jsonb(spec), git_sha],
        )

    async def run(self, run_id: UUID) -> EvalRun:
        """One run the caller may see."""
        return await self._one(
            EvalRun, f"select {_RUN} from public.eval_runs where id = %s", [run_id]
        )

    async def samples(self, run_id: UUID) -> list[EvalSample]:
        """Per-sample rows of a run, by sample id."""
        return await self._all(
            EvalSample,
            """select sample_id, reference, hypothesis, metrics, error from public.eval_samples
               where run_id = %s order by sample_id""",
            [run_id],
        )

    async def add_samples(self, run_id: UUID, samples: Sequence[EvalSample]) -> None:
        """Store per-sample results (a re-sent sample replaces the earlier one, so resumes are safe)."""
        with translated():
            async with self.conn.cursor() as cur:
                await cur.executemany(
                    """insert into public.eval_samples (run_id, sample_id, reference, hypothesis, metrics, error)
                       values (%s, %s, %s, %s, %s, %s)
                       on conflict (run_id, sample_id) do update set reference = excluded.reference,
                         hypothesis = excluded.hypothesis, metrics = excluded.metrics, error = excluded.error""",
                    [
                        (run_id, s.sample_id, s.reference, s.hypothesis, Jsonb(s.metrics), s.error)
                        for s in samples
                    ],
                )

    async def finish_run(self, run_id: UUID, *, status: str, metrics: dict[str, Any]) -> EvalRun:
        """Close a run with its corpus metrics."""
        return await self._one(
            EvalRun,
            f"""update public.eval_runs set status = %s, metrics = %s, finished_at = now()
                where id = %s returning {_RUN}""",
            [status, Jsonb(metrics), run_id],
        )

    async def runs(self, *, task: str | None = None) -> list[EvalRun]:
        """Runs the caller may see, newest first."""
        return await self._all(
            EvalRun,
            f"select {_RUN} from public.eval_runs where %(task)s::text is null or task = %(task)s"
            " order by started_at desc",
            {"task": task},
        )

    async def reports(self, *, limit: int = 20) -> list[StoredObject]:
        """Stored eval reports the caller may read (researchers: all), newest first."""
        return await self._all(
            StoredObject,
            """select id, bucket, path, owner_id, content_type, size_bytes, sha256, created_at
               from public.storage_objects where bucket = 'reports'
               order by created_at desc limit %s""",
            [limit],
        )
