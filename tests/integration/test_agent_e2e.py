"""The voice agent end to end through the real LiveKit server, the stack's worker and Postgres.

A `livekit.rtc` client joins as a workbench user and speaks recorded human
speech (Debian's pocketsphinx-testdata); the agent, dispatched by LiveKit,
greets, transcribes, answers, and every turn lands in the database with its
latency and audio. Also: barge-in, a database outage mid-conversation, and a
track that carries no speech.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
import pytest
from livekit import api

from stack.services import LocalStack
from tests.support.live_stacks import wait_for_stack
from tests.support.personas import Persona, create_user
from tests.support.speech import pocketsphinx_utterances
from workbench.config import Settings
from workbench.db.connection import (
    admin_database_url,
    database_url,
    fresh_connections,
    service_session,
)
from workbench.db.models import WorkerBeat
from workbench.db.repositories import WorkersRepo
from workbench.metrics.wer import error_rates
from workbench.rooms import open_room, server_api, wait_for_agent
from workbench.voice_client import VoiceClient, join_as_web_app

pytestmark = pytest.mark.integration

LIBRIVOX_0880 = "sense_and_sensibility_01_austen_64kb-0880"


@pytest.fixture
def speaker(admin_dsn: str, jwt_secret: str) -> Persona:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        return create_user(
            conn, name="speaker", role="user", jwt_secret=jwt_secret, display_name="Sam"
        )


@pytest.fixture
def pipeline() -> str:
    """The agent pipeline the room asks for (tests parametrize it)."""
    return "streaming"


@pytest.fixture
async def client(
    stack: LocalStack, settings: Settings, speaker: Persona, pipeline: str
) -> AsyncIterator[VoiceClient]:
    assert stack.agent.healthy(), "the stack's agent worker is not running"
    assert speaker.id is not None
    voice = await join_as_web_app(settings, speaker.id, pipeline=pipeline)
    yield voice
    await voice.close()


def _utterance(name: str) -> Path:
    return next(u.path for u in pocketsphinx_utterances() if u.path.stem == name)


async def _greeted(client: VoiceClient) -> None:
    t0 = time.monotonic()
    assert await client.wait_for_agent_audio(t0, timeout_s=60) is not None, (
        "no greeting from the agent"
    )
    await client.silence(4.0)  # let the greeting finish


def _conversation(dsn: str, owner: UUID) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    with psycopg.connect(dsn, row_factory=psycopg.rows.dict_row) as conn:
        conversation = conn.execute(
            "select * from public.conversations where owner_id = %s order by started_at desc limit 1",
            [owner],
        ).fetchone()
        if conversation is None:
            return None, []
        turns = conn.execute(
            "select * from public.turns where conversation_id = %s order by idx",
            [conversation["id"]],
        ).fetchall()
        return conversation, turns


async def _wait_for(
    dsn: str, owner: UUID, done: Any, timeout_s: float = 40
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    deadline = time.monotonic() + timeout_s
    while True:
        conversation, turns = await asyncio.to_thread(_conversation, dsn, owner)
        if conversation is not None and done(conversation, turns):
            return conversation, turns
        if time.monotonic() > deadline:
            pytest.fail(f"conversation never reached the expected state: {conversation}, {turns}")
        await asyncio.sleep(0.5)


@pytest.mark.parametrize("pipeline", ["streaming", "sequential"])
async def test_a_spoken_question_is_answered_and_recorded(
    client: VoiceClient, speaker: Persona, admin_dsn: str, settings: Settings, pipeline: str
) -> None:
    await _greeted(client)
    ended = await client.say(str(_utterance(LIBRIVOX_0880)), then_silence_s=0.2)
    reply_at = await client.wait_for_agent_audio(ended + 0.2, timeout_s=60)
    assert reply_at is not None, "the agent never answered"
    await client.silence(3.0)
    await client.close()

    assert speaker.id is not None
    conversation, turns = await _wait_for(
        admin_dsn, speaker.id, lambda c, t: c["status"] == "completed"
    )
    assert conversation["model_specs"]["name"] == "cpu-small"
    assert conversation["model_specs"]["pipeline"] == pipeline
    assert conversation["prompt_version_id"] is not None  # the seeded prompt's active version
    roles = [t["role"] for t in turns]
    assert roles[:3] == ["agent", "user", "agent"], roles  # greeting, question, answer
    greeting, question, answer = turns[:3]
    reference = next(u.reference for u in pocketsphinx_utterances() if u.path.stem == LIBRIVOX_0880)
    assert error_rates([reference], [question["text"]]).wer <= 0.5, question["text"]
    assert question["stt_s"] is not None
    assert question["eou_delay_s"] is not None
    assert answer["text"].strip()
    for field in ("llm_ttft_s", "tts_ttfb_s", "v2v_s"):
        assert answer[field] is not None, field
        assert answer[field] > 0, field
    # The framework's voice-to-voice and what the client heard (from its last word) agree.
    assert abs(answer["v2v_s"] - (reply_at - ended)) < 1.0
    storage = Path(str(settings.storage_url))
    for turn in (greeting, question, answer):
        assert turn["audio_path"], turn
        assert (storage / "audio" / turn["audio_path"]).stat().st_size > 1000


async def test_barge_in_marks_the_agent_turn_interrupted(
    client: VoiceClient, speaker: Persona, admin_dsn: str
) -> None:
    await _greeted(client)
    ended = await client.say(
        str(_utterance("sense_and_sensibility_01_austen_64kb-0870")), then_silence_s=0.2
    )
    started = await client.wait_for_agent_audio(ended + 0.2, timeout_s=60)
    assert started is not None
    await client.silence(0.3)
    await client.say(
        str(_utterance("sense_and_sensibility_01_austen_64kb-0890")), then_silence_s=4.0
    )
    await client.close()
    assert speaker.id is not None
    _, turns = await _wait_for(admin_dsn, speaker.id, lambda c, t: c["status"] == "completed")
    answers = [t for t in turns if t["role"] == "agent"][1:]  # after the greeting
    assert answers, turns
    assert answers[0]["interrupted"], [(t["role"], t["text"], t["interrupted"]) for t in turns]


async def test_turns_survive_a_database_outage(
    client: VoiceClient, speaker: Persona, admin_dsn: str, stack: LocalStack
) -> None:
    await _greeted(client)
    stack.postgres.stop()
    try:
        ended = await client.say(str(_utterance(LIBRIVOX_0880)), then_silence_s=0.2)
        assert (
            await client.wait_for_agent_audio(ended + 0.2, timeout_s=60) is not None
        )  # the conversation goes on
        await client.silence(3.0)
    finally:
        stack.postgres.start()
    await client.close()
    assert speaker.id is not None
    _, turns = await _wait_for(
        admin_dsn, speaker.id, lambda c, t: c["status"] == "completed" and len(t) >= 3
    )
    assert [t["role"] for t in turns[:3]] == ["agent", "user", "agent"]
    # Leave the stack as found: the worker offered again (its heartbeat stored since the
    # database came back), or the next test's room would find its stack unavailable.
    await asyncio.to_thread(wait_for_stack, admin_dsn, stack.settings.default_stack)


async def test_a_track_without_speech_makes_no_user_turn(
    client: VoiceClient, speaker: Persona, admin_dsn: str
) -> None:
    await _greeted(client)
    rng = np.random.default_rng(7)
    await client.say_pcm(rng.normal(0, 0.003, 16_000 * 3).astype(np.float32), 16_000)  # faint noise
    await client.silence(3.0)
    await client.close()
    assert speaker.id is not None
    _, turns = await _wait_for(admin_dsn, speaker.id, lambda c, t: c["status"] == "completed")
    user_turns = [t for t in turns if t["role"] == "user"]
    assert all(len(t["text"].split()) <= 3 for t in user_turns), user_turns


async def test_rooms_opened_together_each_get_the_agent(
    stack: LocalStack, settings: Settings, admin_dsn: str, jwt_secret: str
) -> None:
    """Two users starting at the same moment on an idle worker are both answered."""
    assert stack.agent.healthy(), "the stack's agent worker is not running"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        people = [
            create_user(conn, name=f"twin{i}", role="user", jwt_secret=jwt_secret) for i in range(2)
        ]
    await asyncio.sleep(3)  # the previous test's job has exited: the worker is idle
    clients = await asyncio.gather(
        *(join_as_web_app(settings, p.id) for p in people if p.id is not None)
    )
    try:
        t0 = time.monotonic()
        greeted = await asyncio.gather(*(c.wait_for_agent_audio(t0, timeout_s=60) for c in clients))
        assert all(at is not None for at in greeted), greeted
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def test_no_one_is_recorded_in_a_room_the_web_app_did_not_open(
    stack: LocalStack, settings: Settings, speaker: Persona
) -> None:
    """Holding the LiveKit key pair is not enough to write into a user's history.

    A client creates a room itself and joins it with a real user's id as identity:
    the agent must leave without greeting, and store nothing for that user.
    """
    room = f"forged-{time.monotonic_ns()}"
    log_size = stack.agent.log_path.stat().st_size
    async with server_api(settings) as lk:
        await lk.room.create_room(api.CreateRoomRequest(name=room, empty_timeout=10))
        # The key pair can summon the agent too.
        await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(
                agent_name=settings.agent_name_for(settings.default_stack), room=room
            )
        )
    await _impostor_is_not_recorded(stack, settings, room, str(speaker.id), log_size)


async def _impostor_is_not_recorded(
    stack: LocalStack, settings: Settings, room: str, identity: str, log_size: int
) -> None:
    """A client with a token minted for `identity` joins `room`: the agent comes, leaves
    without a word (its log says why, after `log_size`), and stores nothing."""
    assert settings.livekit_url
    assert settings.livekit_api_key
    assert settings.livekit_api_secret
    voice = VoiceClient.minted(
        settings.livekit_url,
        settings.livekit_api_key,
        settings.livekit_api_secret.get_secret_value(),
        room=room,
        identity=identity,
    )
    await voice.connect()
    try:
        assert await voice.wait_for_agent_audio(time.monotonic(), timeout_s=15) is None
    finally:
        await voice.close()
    with stack.agent.log_path.open("rb") as log:
        log.seek(log_size)
        assert b"not the user this room was opened for" in log.read()  # it came, and left
    async with await psycopg.AsyncConnection.connect(admin_database_url(settings)) as conn:
        cur = await conn.execute(
            "select count(*) from public.conversations where room_name = %s", [room]
        )
        assert await cur.fetchone() == (0,)


async def test_the_owners_identity_without_the_room_key_is_not_recorded(
    stack: LocalStack, settings: Settings, speaker: Persona
) -> None:
    """A room the web app opened for a user, joined first by someone who minted a token
    with that user's identity (the LiveKit key pair can): without the room's key, from
    the owner's own token, the agent leaves and records nothing."""
    assert speaker.id is not None
    async with await psycopg.AsyncConnection.connect(
        database_url(settings), autocommit=True
    ) as conn:
        ticket = await open_room(settings, conn, user_id=speaker.id, display_name="Sam")
    log_size = stack.agent.log_path.stat().st_size
    await _impostor_is_not_recorded(stack, settings, ticket.room, str(speaker.id), log_size)


async def test_a_room_no_agent_could_take_is_queued_until_one_is_free(
    stack: LocalStack, settings: Settings, speaker: Persona
) -> None:
    """A self-hosted LiveKit drops a dispatch no worker can take; the web app dispatches again."""
    stack.agent.stop()  # every slot taken, as far as this room can tell: no worker at all
    voice: VoiceClient | None = None
    try:
        # A worker killed a moment ago: its heartbeat has not aged out, so the stack is
        # still offered and the room is dispatched, and dropped.
        await _fresh_heartbeat(settings, settings.default_stack)
        assert speaker.id is not None
        voice = await join_as_web_app(settings, speaker.id)
        waited: list[float] = []
        waiter = asyncio.create_task(
            wait_for_agent(
                settings,
                voice.room.name,
                connect=fresh_connections(database_url(settings), name="tests"),
                on_wait=waited.append,
                retry_s=1.0,
            )
        )
        deadline = time.monotonic() + 20
        while not waited:  # the page is told the room is queued
            assert time.monotonic() < deadline, "the waiter never reported the room queued"
            await asyncio.sleep(0.2)
        assert not waiter.done()
        await asyncio.to_thread(stack.up)  # a worker is free again
        assert await asyncio.wait_for(waiter, 120) is True
        t0 = time.monotonic()
        assert await voice.wait_for_agent_audio(t0 - 30, timeout_s=60) is not None, (
            "the queued room got an agent but no greeting"
        )
    finally:
        if voice is not None:
            await voice.close()
        await asyncio.to_thread(stack.up)


async def _fresh_heartbeat(settings: Settings, stack: str) -> None:
    async with (
        await psycopg.AsyncConnection.connect(database_url(settings)) as conn,
        service_session(conn),
    ):
        await WorkersRepo(conn).announce(
            WorkerBeat(
                id=f"killed-a-moment-ago-{time.monotonic_ns()}",
                stack=stack,
                agent_name=settings.agent_name_for(stack),
                spec={"name": stack},
                host="test",
                state="ready",
                # As the stack's worker announced itself: slots to spare beyond those
                # kept for staff, so a plain user's room is dispatched (and dropped).
                max_rooms=settings.rooms_kept_for_staff + 1,
            )
        )
