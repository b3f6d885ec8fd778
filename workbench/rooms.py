"""Rooms for live conversations: one LiveKit room per conversation, a token only for it.

The web server calls `open_room` when a user presses Start: the room's owner is
recorded in the database (`private.rooms`) first, then the room is created with
its metadata (which prompt the agent should use), so the agent that LiveKit
dispatches reads it on join; the browser gets a short-lived token that can join
that room only, as the user (identity = user id), carrying the room's own random
key. The agent records turns only when that identity is the room's recorded owner
and the key it presents is the room's (its digest is recorded with the owner):
holding the LiveKit key pair, which can mint any identity, is not enough to write
into someone's history.

A user holds at most `max_rooms_per_user` live rooms (each takes an agent slot),
counted from the rooms LiveKit still has among those opened for them.

Each model stack's workers register under their own agent name
(`settings.agent_name_for`); a room is dispatched explicitly to the stack chosen
for it (researchers choose, users get `settings.default_stack`), and only to a
stack with a ready worker (`public.live_stacks`): otherwise the user is told the
stack is unavailable instead of waiting for an agent that is not there. A self-hosted
LiveKit server drops a dispatch that finds every worker full ("no worker is
available") and never retries, which left the user in silence; `wait_for_agent`
queues the room instead: it watches for the agent and dispatches again until
one is free, telling the page how long it has waited. It dispatches again only a
room no worker has claimed: the worker that accepts a room's job claims it in
`private.rooms` and rejects a second job for it, so a job still starting (which
the server's dispatch state does not show) never gets a second agent beside it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from livekit import api
from livekit.protocol import models as lk_models
from psycopg import AsyncConnection

from workbench.config import Settings
from workbench.db.connection import Connect, service_session
from workbench.db.repositories import RoomsRepo, WorkersRepo
from workbench.room_options import (
    ROOM_KEY_ATTRIBUTE,
    RoomOptions,
    new_room_key,
    room_key_digest,
    valid_variables,
)

TOKEN_TTL = timedelta(hours=1)
ROOM_LOOKBACK = timedelta(days=1)
_SLUG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


class RoomLimitReached(PermissionError):
    """The user already holds as many live conversations as one user may, or (a plain
    user) every agent slot open to participants is taken (`rooms_kept_for_staff`)."""


class StackUnavailable(RuntimeError):
    """No worker of the chosen model stack is running (or its models do not answer)."""


@dataclass(frozen=True)
class RoomTicket:
    """What the browser needs to join: the server URL, the room, a token for it alone."""

    url: str
    room: str
    token: str
    stack: str  # the model stack the room was dispatched to


async def open_room(
    settings: Settings,
    conn: AsyncConnection[Any],
    *,
    user_id: UUID,
    display_name: str,
    prompt_slug: str | None = None,
    prompt_version: int | None = None,
    pipeline: str | None = None,
    stack: str | None = None,
    variables: dict[str, str] | None = None,
) -> RoomTicket:
    """Create a fresh room for `user_id` (prompt, pipeline, stack in its metadata) and a join token.

    `prompt_version` pins a version of the prompt and `variables` set values of its
    {{variables}} (the agent honours both for a researcher's or admin's room only;
    see RoomOptions).

    `conn` is a connection as the server itself (not in a user's RLS session): the
    room's owner is recorded with service rights. `stack` is the model stack
    chosen (None: the default); the database refuses another than the default
    for an owner who is neither researcher nor admin. Raises RoomLimitReached
    when the user already holds `settings.max_rooms_per_user` live rooms, and
    StackUnavailable when no ready worker runs the stack.
    """
    key, secret = _livekit_keys(settings)
    if prompt_slug is not None and (not prompt_slug or not set(prompt_slug) <= _SLUG_CHARS):
        raise ValueError(f"not a prompt slug: {prompt_slug!r}")
    if prompt_version is not None and (prompt_slug is None or prompt_version < 1):
        raise ValueError("a pinned prompt version is a positive number of a named prompt")
    chosen = None if stack in (None, settings.default_stack) else stack
    stack = chosen or settings.default_stack
    room = f"conv-{user_id.hex[:8]}-{secrets.token_hex(6)}"
    metadata = RoomOptions(
        prompt=prompt_slug,
        pipeline=pipeline,
        stack=stack,
        prompt_version=prompt_version,
        variables=valid_variables(variables or {}),
    ).to_metadata()
    async with (
        server_api(settings) as lk,
        service_session(conn, acting_for=user_id),
    ):
        workers = (await WorkersRepo(conn).live_stacks()).get(stack)
        if workers is None or not workers.serving:
            raise StackUnavailable(unavailable_reason(stack, workers.problems if workers else None))
        cur = await conn.execute("select private.current_app_role()::text")  # the owner's
        plain_user = (await cur.fetchone() or ["user"])[0] == "user"
        if plain_user and workers.rooms >= workers.max_rooms - settings.rooms_kept_for_staff:
            # Counted from the workers' heartbeats (every few seconds): a limit on the
            # many, not an exact count at each click.
            raise RoomLimitReached(
                "every agent open to participants is busy right now; try again in a few minutes"
            )
        rooms = RoomsRepo(conn)
        # Rooms of the last day (a conversation held longer is not counted);
        # LiveKit says which of them still live.
        recent = await rooms.opened_since(user_id, ROOM_LOOKBACK.total_seconds())
        if recent:
            live = await lk.room.list_rooms(api.ListRoomsRequest(names=recent))
            if len(live.rooms) >= settings.max_rooms_per_user:
                raise RoomLimitReached(
                    f"you already have {len(live.rooms)} live conversation(s), the most one "
                    "user may hold; stop one (or close its tab) before starting another"
                )
        room_key = new_room_key()
        await rooms.register(room, user_id, key_sha256=room_key_digest(room_key), stack=chosen)
        await lk.room.create_room(
            api.CreateRoomRequest(
                name=room, empty_timeout=30, departure_timeout=10, metadata=metadata
            )
        )
        await _dispatch(lk, settings.agent_name_for(stack), room, metadata)
    grants = api.VideoGrants(
        room_join=True, room=room, can_publish=True, can_subscribe=True, can_publish_data=False
    )
    token = (
        api.AccessToken(key, secret)
        .with_identity(str(user_id))
        .with_name(display_name)
        .with_attributes({ROOM_KEY_ATTRIBUTE: room_key})
        .with_grants(grants)
        .with_ttl(TOKEN_TTL)
        .to_jwt()
    )
    assert settings.browser_livekit_url is not None
    return RoomTicket(url=settings.browser_livekit_url, room=room, token=token, stack=stack)


def _livekit_keys(settings: Settings) -> tuple[str, str]:
    """The LiveKit API key and secret; ValueError when LiveKit is not configured."""
    if (
        settings.livekit_url is None
        or settings.livekit_api_key is None
        or settings.livekit_api_secret is None
    ):
        raise ValueError(
            "LiveKit is not configured: set LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET"
        )
    return settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()


def server_api(settings: Settings) -> api.LiveKitAPI:
    """A client of LiveKit's server API with the configured key pair (`async with` it)."""
    key, secret = _livekit_keys(settings)
    return api.LiveKitAPI(settings.livekit_http_url, key, secret)


def unavailable_reason(stack: str, problems: str | None = None) -> str:
    """What to tell someone who chose a stack no worker serves."""
    if problems:
        return f"The {stack} model stack cannot serve right now: {problems}"
    return (
        f"No worker runs the {stack} model stack, so no agent would join. Start one "
        f"(locally: add it to WORKBENCH_AGENT_STACKS and run ./dev up) or choose another stack."
    )


def room_stack(settings: Settings, metadata: str | None) -> str:
    """The model stack a room was opened on (its metadata), the default if it names none."""
    return RoomOptions.from_metadata(metadata).stack or settings.default_stack


async def _dispatch(lk: api.LiveKitAPI, agent_name: str, room: str, metadata: str) -> None:
    await lk.agent_dispatch.create_dispatch(
        api.CreateAgentDispatchRequest(agent_name=agent_name, room=room, metadata=metadata)
    )


async def wait_for_agent(
    settings: Settings,
    room: str,
    *,
    connect: Connect,
    on_wait: Callable[[float], None],
    retry_s: float = 5.0,
) -> bool:
    """Until the agent is in `room`: True when it is, False if the room ended first.

    Every `retry_s` it checks; when no worker has claimed the room (every worker
    was full, or none was running: the dispatch was dropped), it dispatches the
    room again and calls `on_wait` with the seconds waited so far. `connect`
    gives a connection as the server, to read the claim. Cancel it to stop
    waiting (the user left).
    """
    started = time.monotonic()
    async with server_api(settings) as lk:
        while True:
            listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
            if not listed.rooms:
                return False
            people = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            if any(p.kind == lk_models.ParticipantInfo.Kind.AGENT for p in people.participants):
                return True
            async with connect() as conn, service_session(conn):
                taken = await RoomsRepo(conn).claimed(room)
            # The first dispatch has `retry_s` to be taken before it counts as dropped.
            if not taken and time.monotonic() - started >= retry_s:
                # The earlier dispatch is left alone: deleting it would also end a job of
                # it that is starting, and that job may hold the room's claim by now.
                metadata = listed.rooms[0].metadata
                agent_name = settings.agent_name_for(room_stack(settings, metadata))
                await _dispatch(lk, agent_name, room, metadata)
                on_wait(time.monotonic() - started)
            await asyncio.sleep(retry_s)
