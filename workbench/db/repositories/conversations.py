"""Conversations and their turns (the agent writes, users read under RLS)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from workbench.db.errors import translated
from workbench.db.models import (
    Conversation,
    ConversationStatus,
    SessionPrompt,
    Turn,
    TurnDraft,
)
from workbench.db.repositories._base import Repo

_CONVERSATION = "id, owner_id, room_name, status, started_at, ended_at, prompt_version_id, experiment_id, variant_id, model_specs"
_TURN_COLUMNS = (
    "conversation_id, idx, role, text, started_at, ended_at, eou_delay_s, stt_s, llm_ttft_s, tts_ttfb_s, "
    "v2v_s, v2v_audio_s, interrupted, false_interruption, audio_path, filter_verdict, agent_ordinal"
)
_TURN = f"id, {_TURN_COLUMNS}, reference_text, reference_by, reference_at"


def _turn_params(turn: TurnDraft) -> list[Any]:
    values = turn.model_dump()
    values["filter_verdict"] = (
        Jsonb(turn.filter_verdict) if turn.filter_verdict is not None else None
    )
    return [values[name.strip()] for name in _TURN_COLUMNS.split(",")]


# Turns per INSERT statement in add_turns: ~20 parameters each, well under Postgres'
# 65,535 per statement.
ADD_TURNS_CHUNK = 1000


class ConversationsRepo(Repo):
    """Conversations and their turns."""

    async def start(
        self,
        *,
        owner_id: UUID | None = None,
        conversation_id: UUID | None = None,
        room_name: str | None = None,
        prompt: SessionPrompt | None = None,
        model_specs: dict[str, Any] | None = None,
    ) -> Conversation:
        """A new active conversation (owner defaults to the caller).

        With `conversation_id` the call is idempotent: replaying it after an
        outage returns the row already written.
        """
        # Replays (a given id) return the existing row; that path is service code,
        # since a user session may not update `id`.
        conflict = "on conflict (id) do update set id = excluded.id" if conversation_id else ""
        return await self._one(
            Conversation,
            f"""insert into public.conversations
                  (id, owner_id, room_name, prompt_version_id, experiment_id, variant_id, model_specs)
                values (coalesce(%s, gen_random_uuid()), coalesce(%s, auth.uid()), %s, %s, %s, %s, %s)
                {conflict}
                returning {_CONVERSATION}""",
            [
                conversation_id,
                owner_id,
                room_name,
                prompt.version.id if prompt else None,
                prompt.experiment_id if prompt else None,
                prompt.variant_id if prompt else None,
                Jsonb(model_specs or {}),
            ],
        )

    async def get(self, conversation_id: UUID) -> Conversation:
        """A conversation the caller may see."""
        return await self._one(
            Conversation,
            f"select {_CONVERSATION} from public.conversations where id = %s",
            [conversation_id],
        )

    async def recent(
        self, *, limit: int = 50, before: datetime | None = None, owner_id: UUID | None = None
    ) -> list[Conversation]:
        """Conversations the caller may see (of one owner, if given), newest first."""
        return await self._all(
            Conversation,
            f"""select {_CONVERSATION} from public.conversations
                where (%(before)s::timestamptz is null or started_at < %(before)s)
                  and (%(owner)s::uuid is null or owner_id = %(owner)s)
                order by started_at desc limit %(limit)s""",
            {"before": before, "limit": limit, "owner": owner_id},
        )

    async def add_turn(self, turn: TurnDraft) -> Turn:
        """Store one completed turn."""
        placeholders = ", ".join(["%s"] * len(_TURN_COLUMNS.split(",")))
        return await self._one(
            Turn,
            f"insert into public.turns ({_TURN_COLUMNS}) values ({placeholders}) returning {_TURN}",
            _turn_params(turn),
        )

    async def add_turns(self, turns: Sequence[TurnDraft]) -> int:
        """Store many turns (flushing a queue after an outage); returns how many were new.

        One multi-row statement per `ADD_TURNS_CHUNK` turns: the tables' statement
        triggers (heard latency, dashboard rollups) then run once per chunk, not per turn.
        """
        row = "(" + ", ".join(["%s"] * len(_TURN_COLUMNS.split(","))) + ")"
        stored = 0
        with translated():
            for start in range(0, len(turns), ADD_TURNS_CHUNK):
                chunk = turns[start : start + ADD_TURNS_CHUNK]
                cur = await self.conn.execute(
                    f"insert into public.turns ({_TURN_COLUMNS}) values {', '.join([row] * len(chunk))}"
                    " on conflict (conversation_id, idx) do nothing",
                    [value for turn in chunk for value in _turn_params(turn)],
                )
                stored += cur.rowcount
        return stored

    async def turns(self, conversation_id: UUID) -> list[Turn]:
        """Turns of a conversation in order."""
        return await self._all(
            Turn,
            f"select {_TURN} from public.turns where conversation_id = %s order by idx",
            [conversation_id],
        )

    async def count_turns(self, conversation_ids: list[UUID]) -> int:
        """How many turns these conversations hold (those the caller may see)."""
        with translated():
            cur = await self.conn.execute(
                "select count(*) from public.turns where conversation_id = any(%s)",
                [conversation_ids],
            )
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def report_heard_latency(
        self, *, room_name: str, agent_ordinal: int, v2v_audio_s: float
    ) -> bool:
        """The caller's browser heard agent reply `agent_ordinal` `v2v_audio_s` after the user stopped.

        Lands on that agent turn's `v2v_audio_s` now or when the agent writes the
        turn. False while the conversation row does not exist yet (report again later).
        """
        return (
            await self._execute(
                """insert into public.client_heard_latency (conversation_id, agent_ordinal, v2v_audio_s)
                   select c.id, %s, %s from public.conversations c
                   where c.room_name = %s and c.owner_id = auth.uid()
                   on conflict do nothing""",
                [agent_ordinal, v2v_audio_s, room_name],
            )
            > 0
        )

    async def report_connection(self, *, room_name: str, stats: dict[str, Any]) -> bool:
        """One sample of the caller's browser connection statistics for the conversation of `room_name`.

        `stats`: rtt_ms, jitter_ms, packets_lost, packets_sent (each may be None).
        True if stored; False while the conversation row does not exist yet, or when
        the database thins it (one sample a second per conversation).
        """
        return (
            await self._execute(
                """insert into public.connection_samples
                       (conversation_id, rtt_ms, jitter_ms, packets_lost, packets_sent)
                   select c.id, %s, %s, %s, %s from public.conversations c
                   where c.room_name = %s and c.owner_id = auth.uid()""",
                [
                    stats.get("rtt_ms"),
                    stats.get("jitter_ms"),
                    stats.get("packets_lost"),
                    stats.get("packets_sent"),
                    room_name,
                ],
            )
            > 0
        )

    async def correct_transcript(self, turn_id: int, reference_text: str) -> Turn:
        """Store a human correction of a turn's text (the reference for evals); empty clears it.

        Who and when are stamped by the database from the session.
        """
        return await self._one(
            Turn,
            f"update public.turns set reference_text = %s where id = %s returning {_TURN}",
            [reference_text, turn_id],
        )

    async def end(
        self, conversation_id: UUID, status: ConversationStatus = "completed"
    ) -> Conversation:
        """Close an active conversation."""
        return await self._one(
            Conversation,
            f"""update public.conversations set status = %s, ended_at = now()
                where id = %s and status = 'active' returning {_CONVERSATION}""",
            [status, conversation_id],
        )
