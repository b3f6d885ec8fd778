"""A conversation's time limit, through the real LiveKit server and a worker started with it.

A browser tab left open in a room would hold an agent slot for ever: at
WORKBENCH_AGENT_MAX_CONVERSATION_S the agent says so, says goodbye, and leaves,
and the conversation is stored as completed with those words as its last turn.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from livekit import api
from livekit.protocol import models as lk_models

from agent.conversation import time_limit_words
from stack.agent_service import AgentService
from stack.services import LocalStack
from tests.support.live_stacks import wait_for_stack
from tests.support.personas import create_user
from tests.support.ports import free_port
from workbench.config import Settings
from workbench.db.connection import admin_database_url
from workbench.models.stack import stack_file
from workbench.rooms import server_api
from workbench.voice_client import VoiceClient, join_as_web_app

pytestmark = pytest.mark.integration

LIMIT_S = 8.0


@pytest.fixture(scope="module")
def short_worker(stack: LocalStack, settings: Settings) -> Iterator[AgentService]:
    """One worker of the default stack whose conversations last LIMIT_S, in place of the stack's."""
    worker = AgentService(
        stack.layout,
        port=free_port(),
        stack=settings.default_stack,
        stack_file=stack_file(settings.default_stack),
        instance=7,
    )
    for own in stack.agents:
        own.stop()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("WORKBENCH_AGENT_MAX_CONVERSATION_S", str(LIMIT_S))
            worker.prepare()
            worker.start()
        wait_for_stack(admin_database_url(settings), settings.default_stack)
        yield worker
    finally:
        worker.stop()
        stack.up()


async def _agent_in(settings: Settings, room: str) -> bool:
    async with server_api(settings) as lk:
        people = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    return any(p.kind == lk_models.ParticipantInfo.Kind.AGENT for p in people.participants)


async def test_a_conversation_at_its_time_limit_is_told_and_ended(
    short_worker: AgentService,
    settings: Settings,
    admin_dsn: str,
    jwt_secret: str,
    clients: list[VoiceClient],
) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        user = create_user(conn, name="lingerer", role="user", jwt_secret=jwt_secret)
    assert user.id is not None
    voice = await join_as_web_app(settings, user.id)
    clients.append(voice)
    joined = time.monotonic()
    assert await voice.wait_for_agent_audio(joined - 5, timeout_s=60) is not None  # the greeting
    room = voice.room.name
    # The user says nothing more and keeps the tab open: the agent leaves at the limit.
    deadline = joined + LIMIT_S + 45
    while await _agent_in(settings, room):
        assert time.monotonic() < deadline, "the agent stayed past the conversation's time limit"
        await voice.silence(1.0)
    assert time.monotonic() - joined >= LIMIT_S - 1  # not before it
    with psycopg.connect(admin_database_url(settings)) as conn:
        deadline = time.monotonic() + 20
        while True:
            row = conn.execute(
                """select c.status, (select t.text from public.turns t where t.conversation_id = c.id
                                     order by t.idx desc limit 1)
                   from public.conversations c where c.room_name = %s""",
                [room],
            ).fetchone()
            if row is not None and row[0] == "completed":
                break
            assert time.monotonic() < deadline, f"the conversation was not ended: {row}"
            time.sleep(0.5)
    assert row[1] is not None
    assert "time limit" in row[1]  # the user was told, and it is on record
    assert row[1].startswith(time_limit_words(LIMIT_S)[:40])
