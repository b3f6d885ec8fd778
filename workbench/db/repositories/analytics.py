"""Usage events and the dashboard views."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from workbench.db.errors import translated
from workbench.db.models import (
    ActivityDaily,
    AnalyticsKind,
    LatencyDaily,
)
from workbench.db.repositories._base import Repo


class AnalyticsRepo(Repo):
    """Usage events and the dashboard views."""

    async def record(self, kind: AnalyticsKind, payload: dict[str, Any] | None = None) -> None:
        """Record an event for the caller."""
        await self._execute(
            "insert into public.analytics_events (kind, payload) values (%s, %s)",
            [kind, Jsonb(payload or {})],
        )

    async def latency_daily(
        self,
        *,
        since: datetime,
        until: datetime,
        prompt_version_id: UUID | None = None,
        model_stack: str | None = None,
    ) -> list[LatencyDaily]:
        """Latency per day, prompt version and model stack in [since, until)."""
        return await self._all(
            LatencyDaily,
            """select * from public.analytics_latency_daily
               where day >= date_trunc('day', %(since)s::timestamptz) and day < %(until)s
                 and (%(prompt)s::uuid is null or prompt_version_id = %(prompt)s)
                 and (%(stack)s::text is null or model_stack = %(stack)s)
               order by day, model_stack""",
            {"since": since, "until": until, "prompt": prompt_version_id, "stack": model_stack},
        )

    async def experiment_arms(self, *, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Per experiment arm: agent turns, voice-to-voice mean and standard deviation, interruption rate.

        Aggregated in SQL under the caller's RLS (no turn rows leave the database).
        """
        with translated():
            cur = await self.conn.execute(
                """select e.name as experiment, v.label, count(t.id) as turns,
                          avg(t.v2v_s) as v2v_mean_s, stddev_samp(t.v2v_s) as v2v_sd_s,
                          avg(t.interrupted::int)::float8 as interruption_rate
                   from public.prompt_experiments e
                   join public.experiment_variants v on v.experiment_id = e.id
                   join public.conversations c on c.variant_id = v.id
                   join public.turns t on t.conversation_id = c.id and t.role = 'agent'
                   where c.started_at >= %s and c.started_at < %s
                   group by e.name, v.label order by e.name, v.label""",
                [since, until],
            )
            names = [d.name for d in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]

    async def activity_daily(self, *, since: datetime, until: datetime) -> list[ActivityDaily]:
        """Conversations and turns per day in [since, until)."""
        return await self._all(
            ActivityDaily,
            """select * from public.analytics_activity_daily
               where day >= date_trunc('day', %s::timestamptz) and day < %s order by day""",
            [since, until],
        )
