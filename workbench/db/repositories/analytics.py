"""Usage events and the dashboard views."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg.types.json import Jsonb

from workbench.db.errors import translated
from workbench.db.models import (
    ActivityDaily,
    AnalyticsKind,
    AuditEvent,
    ConnectionDaily,
    LatencyDaily,
)
from workbench.db.repositories._base import Repo


class AnalyticsRepo(Repo):
    """Usage events and the dashboard views."""

    async def record(
        self, kind: Literal["page_view", "settings_changed"], payload: dict[str, Any] | None = None
    ) -> None:
        """Record a page event for the caller (the database records every other kind itself)."""
        await self._execute(
            "insert into public.analytics_events (kind, payload) values (%s, %s)",
            [kind, Jsonb(payload or {})],
        )

    async def audit_events(
        self,
        *,
        kinds: list[AnalyticsKind] | None = None,
        who: str = "",
        since: datetime | None = None,
        limit: int = 500,
    ) -> list[AuditEvent]:
        """Newest first: the events the caller may read (admins: all), filtered.

        `who` matches the actor's display name (case-insensitive, part of it) or id.
        """
        return await self._all(
            AuditEvent,
            """select e.id, e.occurred_at, e.user_id, p.display_name as who, e.kind, e.payload
               from public.analytics_events e
               left join public.profiles p on p.id = e.user_id
               where (%(kinds)s::text[] is null or e.kind = any(%(kinds)s))
                 and (%(since)s::timestamptz is null or e.occurred_at >= %(since)s)
                 and (%(who)s = '' or p.display_name ilike '%%' || %(who)s || '%%'
                      or e.user_id::text = %(who)s)
               order by e.occurred_at desc, e.id desc
               limit %(limit)s""",
            {"kinds": kinds or None, "since": since, "who": who.strip(), "limit": limit},
        )

    async def latency_daily(
        self,
        *,
        since: datetime,
        until: datetime,
        prompt_version_id: UUID | None = None,
        model_stack: str | None = None,
        simulated: bool = False,
    ) -> list[LatencyDaily]:
        """Latency per day, prompt version and model stack in [since, until): of people's
        conversations, or with `simulated` of simulated callers'."""
        return await self._all(
            LatencyDaily,
            """select * from public.analytics_latency_daily
               where day >= date_trunc('day', %(since)s::timestamptz) and day < %(until)s
                 and (%(prompt)s::uuid is null or prompt_version_id = %(prompt)s)
                 and (%(stack)s::text is null or model_stack = %(stack)s)
                 and simulated = %(simulated)s
               order by day, model_stack""",
            {
                "since": since,
                "until": until,
                "prompt": prompt_version_id,
                "stack": model_stack,
                "simulated": simulated,
            },
        )

    async def connection_daily(
        self, *, since: datetime, until: datetime, model_stack: str | None = None
    ) -> list[ConnectionDaily]:
        """Connection quality per day and model stack in [since, until), as the caller may see."""
        return await self._all(
            ConnectionDaily,
            """select * from public.analytics_connection_daily
               where day >= date_trunc('day', %(since)s::timestamptz) and day < %(until)s
                 and (%(stack)s::text is null or model_stack = %(stack)s)
               order by day, model_stack""",
            {"since": since, "until": until, "stack": model_stack},
        )

    async def conversation_latency(
        self, conversation_ids: list[UUID]
    ) -> dict[UUID, dict[str, Any]]:
        """Per conversation: agent turns and voice-to-voice p50 (heard by the browser where measured)."""
        with translated():
            cur = await self.conn.execute(
                """select conversation_id, count(*) as turns,
                          percentile_cont(0.5) within group
                            (order by coalesce(v2v_audio_s, v2v_s)) as v2v_p50_s
                   from public.analytics_turn_latency
                   where conversation_id = any(%s) group by conversation_id""",
                [conversation_ids],
            )
            rows = await cur.fetchall()
        return {row[0]: {"turns": row[1], "v2v_p50_s": row[2]} for row in rows}

    async def experiment_arms(
        self, *, since: datetime, until: datetime, simulated: bool = False
    ) -> list[dict[str, Any]]:
        """Per experiment arm and conversation: agent turns, their voice-to-voice sum and count,
        the turns interrupted and the researchers' mean rating (None if unrated), so intervals
        can resample conversations (the independent unit), not turns (`evals.experiments`).

        Aggregated in SQL under the caller's RLS (no turn rows leave the database), over
        people's conversations, or with `simulated` over simulated callers'.
        """
        with translated():
            cur = await self.conn.execute(
                """select e.name as experiment, v.label, c.id as conversation_id,
                          count(t.id) as turns, coalesce(sum(t.v2v_s), 0)::float8 as v2v_sum_s,
                          count(t.v2v_s) as v2v_turns,
                          count(t.id) filter (where t.interrupted) as interrupted,
                          (select avg(a.rating)::float8 from public.annotations a
                            where a.conversation_id = c.id) as rating
                   from public.prompt_experiments e
                   join public.experiment_variants v on v.experiment_id = e.id
                   join public.conversations c on c.variant_id = v.id
                   join public.turns t on t.conversation_id = c.id and t.role = 'agent'
                   where c.started_at >= %s and c.started_at < %s
                     and exists (select 1 from public.simulated_calls s
                                 where s.conversation_id = c.id) = %s
                   group by e.name, v.label, c.id order by e.name, v.label, c.id""",
                [since, until, simulated],
            )
            names = [d.name for d in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]

    async def activity_daily(
        self, *, since: datetime, until: datetime, simulated: bool = False
    ) -> list[ActivityDaily]:
        """Conversations and turns per day in [since, until): people's, or simulated callers'."""
        return await self._all(
            ActivityDaily,
            """select * from public.analytics_activity_daily
               where day >= date_trunc('day', %s::timestamptz) and day < %s and simulated = %s
               order by day""",
            [since, until, simulated],
        )
