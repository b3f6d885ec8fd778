"""One conversation: whom the room admits, the prompt they get, every turn recorded, the time limit.

The agent records only the user the web app opened the room for, presenting that
room's key (`workbench.rooms.open_room`); room metadata may name another prompt,
a pinned version of it and the pipeline (`workbench.room_options.RoomOptions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any, NamedTuple
from uuid import UUID, uuid4

import psycopg
from livekit.agents import (
    AgentFalseInterruptionEvent,
    AgentSession,
    CloseEvent,
    ConversationItemAddedEvent,
    JobContext,
    JobRequest,
    llm,
)
from psycopg_pool import AsyncConnectionPool

from agent.adapters import WorkbenchSTT
from agent.metrics import observe_turn
from agent.pipelines import PIPELINES, CapturingTTS
from agent.recorder import ConversationInfo, ConversationRecorder, recover_journals
from agent.settings import agent_settings
from agent.turn_records import turn_draft
from workbench.config import Settings, get_settings
from workbench.content_filter import ContentPolicy
from workbench.db.connection import (
    Connect,
    database_url,
    fresh_connections,
    open_pool,
    service_session,
)
from workbench.db.errors import DataError
from workbench.db.models import SessionPrompt
from workbench.db.repositories import ProfilesRepo, PromptsRepo, RoomsRepo
from workbench.prompts import FALLBACK_SYSTEM_PROMPT
from workbench.room_options import ROOM_KEY_ATTRIBUTE, RoomOptions, room_key_matches
from workbench.storage import open_store

log = logging.getLogger("workbench.agent")


class RoomChoices(NamedTuple):
    """What a room's metadata asks the agent for."""

    slug: str
    pipeline: str
    pinned: int | None  # a prompt version (staff rooms only)
    variables: dict[str, str]  # values of the prompt's {{variables}} (staff rooms only)


def room_choices(metadata: str | None, *, default_prompt: str) -> RoomChoices:
    """The prompt slug, pipeline, pinned prompt version and prompt variable values a room's
    metadata asks for (defaults when absent or unreadable)."""
    options = RoomOptions.from_metadata(metadata)
    slug = options.prompt or default_prompt
    pipeline = options.pipeline or "streaming"
    if pipeline not in PIPELINES:
        log.warning("unknown pipeline %r in room metadata; using streaming", pipeline)
        pipeline = "streaming"
    return RoomChoices(slug, pipeline, options.prompt_version, options.variables)


APPLICATION_NAME = "voice-workbench-agent"  # as pg_stat_activity shows the agent


def worker_connections(settings: Settings) -> Connect:
    """Fresh connections for the worker's own rare work (heartbeat, journal recovery), each
    on an event loop of its own."""
    return fresh_connections(database_url(settings), name=APPLICATION_NAME)


async def conversation_pool(settings: Settings) -> AsyncConnectionPool:
    """The conversation's connections: a small pool like the web app's (the job closes it).

    A conversation writes every turn; a connection each time would pay a connect (on
    hosted Supabase a TLS handshake to its pooler) per write. Opened without waiting:
    with the database away the conversation goes on journaling, and each write fails
    after a short wait as a failed connect would.
    """
    pool = open_pool(settings, min_size=1, max_size=2, name=APPLICATION_NAME)
    await pool.open(wait=False)
    return pool


async def _room_admission(connect: Connect, room: str) -> tuple[UUID, bytes | None] | None:
    """Whom the web app opened `room` for and its room key's digest (private.rooms), if it did."""
    async with connect() as conn, service_session(conn):
        return await RoomsRepo(conn).admission(room)


class SessionSetup(NamedTuple):
    """The prompt a session runs and what it was filled with."""

    prompt: SessionPrompt | None  # None: the fallback instructions
    user_settings: dict[str, Any]
    instructions: str
    variables: dict[str, str]  # the value each {{variable}} got


async def session_prompt(
    connect: Connect,
    owner_id: UUID,
    slug: str,
    pinned: int | None = None,
    room_values: dict[str, str] | None = None,
) -> SessionSetup:
    """The prompt version this user gets (experiment arm or active), their settings and the instructions.

    `pinned`: the version the room asks for, and `room_values` the values its
    {{variables}} get, which a researcher's or admin's room gets (a simulation of a
    draft, a researcher trying a setting); anyone else's gets the usual. Each variable
    is filled from the room, else the experiment arm, else the version's default
    (user_name: the display name). Without the database (or the prompt) the
    conversation goes on with the fallback instructions; it is journaled all the same.
    """
    try:
        async with connect() as conn, service_session(conn, acting_for=owner_id):
            profile = await ProfilesRepo(conn).get(owner_id)
            prompts = PromptsRepo(conn)
            prompt = await prompts.pinned(slug, pinned) if pinned else None
            if pinned and prompt is None:
                log.warning(
                    "version %s of %r is not this room's to pin; using the usual", pinned, slug
                )
            if prompt is None:
                prompt = await prompts.for_session(slug, user_id=owner_id, role=profile.role)
    except (psycopg.OperationalError, OSError, DataError, KeyError) as exc:
        log.warning("no session prompt (%s); using the fallback instructions", type(exc).__name__)
        return SessionSetup(None, {}, FALLBACK_SYSTEM_PROMPT, {})
    staff = profile.role != "user"
    if room_values and not staff:
        log.warning("room asks prompt variables of a plain user's session; not honoured")
    if prompt.version.variables_without_default:
        log.warning(
            "version %d has no default for %s (made before defaults): the display name fills it",
            prompt.version.version,
            ", ".join(prompt.version.variables_without_default),
        )
    values = prompt.version.values_for(
        user_name=profile.display_name,
        arm=prompt.arm_values,
        room=(room_values or {}) if staff else {},
    )
    return SessionSetup(prompt, profile.settings, prompt.version.render(values), values)


class ConversationLog:
    """Feeds the recorder from the session's events: each finished message becomes a turn, in order."""

    def __init__(
        self,
        recorder: ConversationRecorder,
        *,
        stack_name: str,
        policy: ContentPolicy,
        stt: WorkbenchSTT,
        tts: CapturingTTS,
    ) -> None:
        self.recorder, self.policy, self.stt, self.tts = recorder, policy, stt, tts
        self.stack_name = stack_name
        self._pending: set[asyncio.Task[None]] = set()  # keeps the tasks referenced until done
        self._false_interruptions = 0  # since the previous agent turn
        self._agent_turns = 0  # so far: the next agent turn's ordinal
        self._finishing: asyncio.Future[None] | None = None
        self._closing: asyncio.Task[None] | None = None  # referenced until done

    def attach(self, session: AgentSession[Any], ctx: JobContext) -> None:
        """Record what `session` says and hears; close the conversation, then the job, when it ends."""

        @session.on("agent_false_interruption")
        def _on_false_interruption(_event: AgentFalseInterruptionEvent) -> None:
            self._false_interruptions += 1  # the agent stopped for what was not one, and resumed

        @session.on("conversation_item_added")
        def _on_item(event: ConversationItemAddedEvent) -> None:
            item = event.item
            if isinstance(item, llm.ChatMessage) and item.role in ("user", "assistant"):
                self._track(self._record(item))

        @session.on("close")
        def _on_close(_event: CloseEvent) -> None:
            # The user left (or the session failed): close the conversation, then the job.
            async def close() -> None:
                await self.finish()
                ctx.shutdown(reason="session closed")

            # Not among the turns in flight: finish() waits for those, and this waits for it.
            self._closing = asyncio.create_task(close())

        ctx.add_shutdown_callback(self.finish)

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _record(self, item: llm.ChatMessage) -> None:
        ordinal = None
        if item.role == "assistant":
            ordinal, self._agent_turns = self._agent_turns, self._agent_turns + 1
        draft = turn_draft(
            item,
            conversation_id=self.recorder.info.conversation_id,
            idx=self.recorder.next_index(),
            policy=self.policy,
            false_interruption=bool(self._false_interruptions),
            now=time.time(),
            agent_ordinal=ordinal,
        )
        observe_turn(self.stack_name, draft.role, draft.model_dump())
        pcm, rate = None, 0
        if draft.role == "user":
            heard = self.stt.take_audio()
            if heard is not None:
                pcm, rate = heard
        else:
            pcm, rate = self.tts.take(), self.tts.sample_rate
            self._false_interruptions = 0
        await self.recorder.add_turn(draft, pcm=pcm, sample_rate_hz=rate)

    async def finish(self, _reason: str = "") -> None:
        """Wait for the turns in flight, then end the conversation (once; every caller
        returns when it has ended, so what closes after it can rely on that)."""
        if self._finishing is None:
            self._finishing = asyncio.ensure_future(self._end(list(self._pending)))
        await asyncio.shield(self._finishing)

    async def _end(self, in_flight: list[asyncio.Task[Any]]) -> None:
        await asyncio.gather(*in_flight, return_exceptions=True)
        await self.recorder.end("completed")
        await self.recorder.aclose()


async def admitted_owner(ctx: JobContext, connect: Connect, join_timeout_s: float) -> UUID | None:
    """The room's owner once they joined; None (the job ends) for no one or anyone else."""
    try:
        participant = await asyncio.wait_for(ctx.wait_for_participant(), join_timeout_s)
    except TimeoutError:
        # The browser never came (a closed tab, a deleted room): free the slot. An
        # agent waiting alone keeps the room alive, so nothing else would end it.
        log.warning("no participant joined within %.0f s; leaving the room", join_timeout_s)
        ctx.shutdown(reason="no participant joined")
        return None
    try:
        admission = await _room_admission(connect, ctx.room.name)
    except (psycopg.OperationalError, OSError, DataError) as exc:
        admission = None
        log.warning("could not look up the room's owner (%s)", type(exc).__name__)
    owner_id, key_digest = admission or (None, None)
    presented = participant.attributes.get(ROOM_KEY_ATTRIBUTE)
    if (
        owner_id is None
        or participant.identity != str(owner_id)
        or not room_key_matches(presented, key_digest)
    ):
        # Only the user the web app opened the room for is recorded, with the room's key
        # from their token (workbench/rooms.py): an identity alone can be minted.
        log.warning("the participant is not the user this room was opened for; leaving the room")
        ctx.shutdown(reason="participant is not the room's owner")
        return None
    return owner_id


async def claim_room(request: JobRequest) -> None:
    """Accept a room's job only if no other job holds the room (one agent per room).

    The web app dispatches a room again when no worker has claimed it
    (`workbench.rooms.wait_for_agent`); a job for a room another job holds is
    rejected. A room the web app did not open here is accepted: the entry point
    then admits no one and leaves. Without the database the job is accepted
    (a second agent is the lesser harm than none).
    """
    try:
        async with worker_connections(get_settings())() as conn, service_session(conn):
            claimed = await RoomsRepo(conn).claim(request.room.name, request.id)
    except (psycopg.OperationalError, OSError, DataError) as exc:
        log.warning("could not claim room %s (%s); accepting", request.room.name, exc)
        claimed = True
    if claimed is False:
        log.info("room %s already has its agent; rejecting job %s", request.room.name, request.id)
        await request.reject()
        return
    await request.accept()


def time_limit_words(limit_s: float) -> str:
    """What the agent says when a conversation reaches its time limit."""
    minutes = limit_s / 60
    amount = f"{minutes:.0f} minutes" if minutes >= 2 else f"{limit_s:.0f} seconds"
    return f"This conversation has reached its time limit of {amount}. Goodbye!"


def keep_time_limit(session: AgentSession[Any], ctx: JobContext, limit_s: float) -> None:
    """End the conversation after `limit_s` (`end_at_time_limit`), unless the job ends first."""
    time_limit = asyncio.create_task(end_at_time_limit(session, ctx, limit_s))

    async def stop_the_clock() -> None:
        time_limit.cancel()

    ctx.add_shutdown_callback(stop_the_clock)


async def end_at_time_limit(session: AgentSession[Any], ctx: JobContext, limit_s: float) -> None:
    """After `limit_s`, tell the user, let the words play out, then leave the room."""
    await asyncio.sleep(limit_s)
    log.info("the conversation reached its time limit (%.0f s); ending it", limit_s)
    with contextlib.suppress(Exception):  # a session already closing: leave all the same
        handle = session.say(time_limit_words(limit_s), allow_interruptions=False)
        await asyncio.wait_for(handle.wait_for_playout(), timeout=30)
    ctx.shutdown(reason="the conversation reached its time limit")


async def start_recorder(
    settings: Settings,
    connect: Connect,
    *,
    owner_id: UUID,
    room_name: str,
    prompt: SessionPrompt | None,
    model_specs: dict[str, Any],
) -> ConversationRecorder:
    """The conversation's recorder, its start journaled (and stored when the database is there)."""
    recorder = ConversationRecorder(
        ConversationInfo(
            conversation_id=uuid4(),
            owner_id=owner_id,
            room_name=room_name,
            prompt=prompt,
            model_specs=model_specs,
        ),
        connect=connect,
        store=open_store(settings),
        journal_dir=settings.journal_dir,
        max_audio_s=agent_settings().max_turn_audio_s,
    )
    await recorder.start()
    return recorder


async def recover() -> int:
    """Store journals a crashed worker left behind, closing their conversations as interrupted."""
    settings = get_settings()
    return await recover_journals(
        settings.journal_dir, connect=worker_connections(settings), store=open_store(settings)
    )
