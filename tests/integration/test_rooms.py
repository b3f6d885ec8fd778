"""Rooms for browser conversations on the stack's LiveKit: metadata for the agent, a token for one room."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
import psycopg
import pytest
from livekit import api
from livekit.protocol import models as lk_models

from tests.support.live_stacks import wait_for_stack
from tests.support.personas import Persona, create_user
from workbench.config import Settings
from workbench.room_options import ROOM_KEY_ATTRIBUTE, room_key_matches
from workbench.rooms import RoomLimitReached, open_room, server_api
from workbench.voice_client import join_as_web_app

pytestmark = pytest.mark.integration


@pytest.fixture
async def server_conn(admin_dsn: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def ada(admin_dsn: str, jwt_secret: str) -> Persona:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        return create_user(conn, name="ada", role="user", jwt_secret=jwt_secret)


async def test_a_room_carries_the_prompt_its_owner_and_a_token_for_it_alone(
    settings: Settings, server_conn: psycopg.AsyncConnection[Any], ada: Persona
) -> None:
    assert ada.id is not None
    ticket = await open_room(
        settings, server_conn, user_id=ada.id, display_name="Ada", prompt_slug="voice-assistant"
    )
    assert ticket.url == settings.livekit_url
    assert settings.livekit_api_key is not None
    assert settings.livekit_api_secret is not None
    secret = settings.livekit_api_secret.get_secret_value()
    async with server_api(settings) as lk:
        rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[ticket.room]))
        assert json.loads(rooms.rooms[0].metadata) == {
            "prompt": "voice-assistant",
            "stack": settings.default_stack,  # users get the default; the agent of it is sent
        }
    assert ticket.stack == settings.default_stack
    # Not deleted: the agent LiveKit dispatched to it would re-create it by joining,
    # and wait in it again; left alone, it leaves after WORKBENCH_AGENT_JOIN_TIMEOUT_S.
    cur = await server_conn.execute(
        "select owner_id, key_sha256 from private.rooms where name = %s", [ticket.room]
    )
    owner_id, key_sha256 = await cur.fetchone()  # type: ignore[misc]
    assert owner_id == ada.id  # what the agent checks the participant against
    claims = jwt.decode(ticket.token, secret, algorithms=["HS256"], options={"verify_aud": False})
    assert claims["sub"] == str(ada.id)
    # The room's key rides in the owner's token; the database keeps only its digest.
    room_key = claims["attributes"][ROOM_KEY_ATTRIBUTE]
    assert room_key_matches(room_key, bytes(key_sha256))
    assert bytes(key_sha256) != room_key.encode()
    assert claims["video"]["room"] == ticket.room
    assert claims["video"]["roomJoin"] is True
    assert not claims["video"].get("roomAdmin")
    assert claims["exp"] - claims["nbf"] <= 3600


async def test_a_bad_prompt_slug_is_refused(
    settings: Settings, server_conn: psycopg.AsyncConnection[Any]
) -> None:
    with pytest.raises(ValueError, match="not a prompt slug"):
        await open_room(
            settings, server_conn, user_id=uuid.uuid4(), display_name="x", prompt_slug="../etc"
        )


async def test_one_user_holds_at_most_the_allowed_live_rooms_even_clicking_twice(
    settings: Settings, admin_dsn: str, ada: Persona
) -> None:
    """Each room takes an agent slot: one user cannot take them all (parallel Starts included)."""
    assert ada.id is not None
    one_each = settings.model_copy(update={"max_rooms_per_user": 1})

    async def start() -> str:
        async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
            try:
                return (await open_room(one_each, conn, user_id=ada.id, display_name="Ada")).room
            except RoomLimitReached as exc:
                return str(exc)

    outcomes = await asyncio.gather(start(), start())
    opened = [o for o in outcomes if o.startswith("conv-")]
    assert len(opened) == 1, outcomes
    (refusal,) = [o for o in outcomes if not o.startswith("conv-")]
    assert "already have 1 live conversation" in refusal
    with psycopg.connect(admin_dsn) as conn:
        rows = conn.execute("select name from private.rooms where owner_id = %s", [ada.id])
        assert [r[0] for r in rows] == opened  # the refused Start left nothing behind


async def test_plain_users_leave_the_slots_kept_for_staff(
    settings: Settings, admin_dsn: str, jwt_secret: str
) -> None:
    """Anyone may register: plain users' rooms leave `rooms_kept_for_staff` slots of a stack
    free, so a researcher can still start when self-registered accounts take the rest."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        plain = create_user(conn, name="walk-in", role="user", jwt_secret=jwt_secret)
        staff = create_user(conn, name="staff", role="researcher", jwt_secret=jwt_secret)
    assert plain.id is not None
    assert staff.id is not None
    # Every slot kept for staff (more than the stack's worker has), as when participants
    # already hold all the others.
    kept = settings.model_copy(update={"rooms_kept_for_staff": 1000})
    async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
        with pytest.raises(RoomLimitReached, match="open to participants is busy"):
            await open_room(kept, conn, user_id=plain.id, display_name="Walk-in")
        ticket = await open_room(kept, conn, user_id=staff.id, display_name="Staff")
    assert ticket.room.startswith("conv-")
    with psycopg.connect(admin_dsn) as conn:
        rows = conn.execute("select count(*) from private.rooms where owner_id = %s", [plain.id])
        assert rows.fetchone() == (0,)  # the refused Start left nothing behind


async def test_a_room_dispatched_twice_gets_one_agent(
    settings: Settings, admin_dsn: str, jwt_secret: str
) -> None:
    """The web app dispatches again a room it thinks was dropped; a job still starting for
    it (which LiveKit's dispatch state does not show) must not get a second agent beside it."""
    wait_for_stack(admin_dsn, settings.default_stack, idle=True, timeout_s=90)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        rita = create_user(conn, name="rita", role="researcher", jwt_secret=jwt_secret)
    assert rita.id is not None
    voice = await join_as_web_app(settings, rita.id)
    room = voice.room.name
    try:
        async with server_api(settings) as lk:
            # As the web app does when the agent has not joined after a grace: dispatched again.
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(
                    agent_name=settings.agent_name_for(settings.default_stack), room=room
                )
            )
            assert await voice.wait_for_agent_audio(0, timeout_s=90) is not None
            await asyncio.sleep(10)  # a second job would have started and joined by now
            people = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
        agents = [p for p in people.participants if p.kind == lk_models.ParticipantInfo.Kind.AGENT]
        assert len(agents) == 1, [p.identity for p in agents]
        with psycopg.connect(admin_dsn) as conn:
            (job,) = conn.execute(
                "select claimed_by_job from private.rooms where name = %s", [room]
            ).fetchone() or (None,)
        assert job is not None
        assert job in agents[0].identity  # an agent joins as agent-<its job id>
    finally:
        await voice.close()
