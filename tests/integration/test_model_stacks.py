"""Model stacks chosen per conversation, through the real LiveKit server, workers and Postgres.

A worker per stack announces itself (public.agent_workers); a room goes to the
chosen stack's worker by explicit dispatch and its conversation records that
stack; a stack with no worker is refused, never replaced by another; and only
researchers and admins choose, which the database checks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import psycopg
import pytest
from livekit import api

from stack.agent_service import AgentService
from stack.services import LocalStack
from tests.integration.test_agent_e2e import LIBRIVOX_0880, _greeted, _utterance, _wait_for
from tests.support.personas import Persona, create_user, session_as
from tests.support.ports import free_port
from tests.support.speech import pocketsphinx_utterances
from workbench.config import Settings
from workbench.db.connection import database_url, service_session
from workbench.db.errors import PermissionDenied
from workbench.db.models import WorkerBeat
from workbench.db.repositories import RoomsRepo, WorkersRepo
from workbench.metrics.wer import error_rates
from workbench.models.stack import stack_file
from workbench.rooms import StackUnavailable, open_room, server_api
from workbench.voice_client import join_as_web_app

pytestmark = pytest.mark.integration

HF = "cpu-hf"


@pytest.fixture(scope="module")
def hf_worker(stack: LocalStack) -> Iterator[AgentService]:
    """A worker of the all-Hugging-Face stack: the stack's own if it runs one, else one started here."""
    own = next((agent for agent in stack.agents if agent.stack == HF), None)
    agent = own or AgentService(stack.layout, port=free_port(), stack=HF, stack_file=stack_file(HF))
    agent.prepare()
    agent.start()
    yield agent
    if own is None:
        agent.stop()
    else:
        agent.start()  # a test stopped it


@pytest.fixture
def researcher(admin_dsn: str, jwt_secret: str) -> Persona:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        return create_user(
            conn, name="stacks", role="researcher", jwt_secret=jwt_secret, display_name="Rae"
        )


async def _open(settings: Settings, user: Persona, stack: str | None) -> tuple[str, str]:
    assert user.id is not None
    async with await psycopg.AsyncConnection.connect(
        database_url(settings), autocommit=True
    ) as conn:
        ticket = await open_room(
            settings, conn, user_id=user.id, display_name=user.name, stack=stack
        )
    return ticket.room, ticket.stack


async def _live(settings: Settings, user: Persona) -> dict[str, int | None]:
    """Serving stacks and their largest worker's memory, as a signed-in user reads them."""
    async with session_as(database_url(settings), user) as conn:
        live = await WorkersRepo(conn).live_stacks()
    return {name: s.worker_memory_mb for name, s in live.items() if s.serving}


async def test_each_stack_s_worker_announces_itself_with_its_memory(
    hf_worker: AgentService, settings: Settings, researcher: Persona
) -> None:
    deadline = time.monotonic() + 10  # a worker beats as soon as its models are ready
    while not {settings.default_stack, HF} <= set(live := await _live(settings, researcher)):
        assert time.monotonic() < deadline, live
        await asyncio.sleep(0.5)
    for name in (settings.default_stack, HF):
        assert (live[name] or 0) > 200, live  # models loaded: hundreds of MB at least


async def test_a_conversation_runs_on_the_stack_a_researcher_chose(
    hf_worker: AgentService, settings: Settings, researcher: Persona, admin_dsn: str
) -> None:
    assert settings.livekit_url
    assert settings.livekit_api_key
    assert settings.livekit_api_secret
    with psycopg.connect(admin_dsn, autocommit=True) as conn:  # a voice only cpu-hf speaks
        conn.execute(
            """update public.profiles set settings = '{"voice": "en-gb-x-rp"}' where id = %s""",
            [researcher.id],
        )
    assert researcher.id is not None
    voice = await join_as_web_app(settings, researcher.id, stack=HF)
    try:
        await _greeted(voice)
        ended = await voice.say(str(_utterance(LIBRIVOX_0880)), then_silence_s=0.2)
        assert await voice.wait_for_agent_audio(ended + 0.2, timeout_s=90) is not None, (
            "the cpu-hf agent never answered"
        )
        await voice.silence(4.0)
    finally:
        await voice.close()
    assert researcher.id is not None
    conversation, turns = await _wait_for(
        admin_dsn, researcher.id, lambda c, t: c["status"] == "completed", timeout_s=60
    )
    specs = conversation["model_specs"]
    assert specs["name"] == HF
    assert (specs["stt"]["backend"], specs["llm"]["backend"], specs["tts"]["backend"]) == (
        "transformers",
        "transformers",
        "espeak-ng",
    )
    assert specs["voice"] == "en-gb-x-rp"  # the user's voice setting, which this stack speaks
    assert [t["role"] for t in turns[:3]] == ["agent", "user", "agent"]
    reference = next(u.reference for u in pocketsphinx_utterances() if u.path.stem == LIBRIVOX_0880)
    assert error_rates([reference], [turns[1]["text"]]).wer <= 0.5, turns[1]["text"]
    assert turns[2]["text"].strip()


async def test_choosing_a_stack_is_a_researcher_s_power_checked_in_sql(
    settings: Settings, admin_dsn: str, jwt_secret: str, researcher: Persona
) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        user = create_user(conn, name="plain", role="user", jwt_secret=jwt_secret)
    assert user.id is not None
    assert researcher.id is not None
    async with await psycopg.AsyncConnection.connect(
        database_url(settings), autocommit=True
    ) as conn:
        with pytest.raises(PermissionDenied, match="only researchers and admins"):
            async with service_session(conn, acting_for=user.id):
                await RoomsRepo(conn).register(
                    f"t-{time.time_ns()}", user.id, key_sha256=bytes(32), stack=HF
                )
        async with service_session(conn, acting_for=user.id):  # the default: anyone
            await RoomsRepo(conn).register(f"t-{time.time_ns()}", user.id, key_sha256=bytes(32))
        async with service_session(conn, acting_for=researcher.id):
            await RoomsRepo(conn).register(
                f"t-{time.time_ns()}", researcher.id, key_sha256=bytes(32), stack=HF
            )
    # A signed-in user reads which stacks serve but cannot announce a worker.
    beat = WorkerBeat(
        id="forged", stack=HF, agent_name="x", spec={}, host="h", state="ready", max_rooms=1
    )
    with pytest.raises(PermissionDenied):
        async with session_as(database_url(settings), user) as conn:
            await WorkersRepo(conn).announce(beat)


async def test_a_stack_whose_worker_stopped_is_refused_not_replaced(
    hf_worker: AgentService, settings: Settings, researcher: Persona
) -> None:
    hf_worker.stop()  # a clean stop removes its heartbeat at once
    assert HF not in await _live(settings, researcher)
    async with server_api(settings) as lk:
        before = {r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms}
        with pytest.raises(StackUnavailable, match="No worker runs the cpu-hf model stack"):
            await _open(settings, researcher, HF)
        after = {r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms}
        assert after - before == set()  # no room was opened for an agent that would not come
        # The default stack still serves the same researcher.
        room, chosen = await _open(settings, researcher, None)
        assert chosen == settings.default_stack
        await lk.room.delete_room(api.DeleteRoomRequest(room=room))  # free the agent's slot
