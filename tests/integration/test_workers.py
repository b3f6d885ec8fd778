"""Several workers of one stack through the real LiveKit server: rooms shared by load, and a
worker that dies mid-conversation loses nothing and leaves the others serving."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import psutil
import psycopg
import pytest
from livekit import api
from livekit.protocol import models as lk_models

from stack.agent_service import AgentService
from stack.services import LocalStack
from tests.integration.test_agent_e2e import LIBRIVOX_0880, _utterance
from tests.support.personas import create_user
from tests.support.ports import free_port
from workbench.config import Settings
from workbench.db.connection import admin_database_url, fresh_connections
from workbench.models.stack import stack_file
from workbench.rooms import server_api, wait_for_agent
from workbench.voice_client import VoiceClient, join_as_web_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_workers(stack: LocalStack, settings: Settings) -> Iterator[list[AgentService]]:
    """Two workers of the default stack holding one room each at most, in place of the
    stack's own: a full worker takes no room, so where rooms go is certain."""
    default = settings.default_stack
    workers = [
        AgentService(
            stack.layout,
            port=free_port(),
            stack=default,
            stack_file=stack_file(default),
            instance=instance,
        )
        for instance in (8, 9)
    ]
    for own in stack.agents:
        own.stop()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("WORKBENCH_AGENT_MAX_JOBS", "1")  # read by the workers started here
            for worker in workers:
                worker.prepare()
                worker.start()
        yield workers
    finally:
        for worker in workers:
            worker.stop()
        stack.up()


async def _room_with_client(settings: Settings, admin_dsn: str, jwt_secret: str) -> VoiceClient:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        user = create_user(conn, name="shared", role="user", jwt_secret=jwt_secret)
    assert user.id is not None
    # Both workers' slots are for these participants (none kept for staff here).
    return await join_as_web_app(settings.model_copy(update={"rooms_kept_for_staff": 0}), user.id)


def _rooms_by_worker(settings: Settings, pids: list[int]) -> dict[int, int]:
    """Rooms each worker (by pid) says it holds, from its heartbeat row."""
    with psycopg.connect(admin_database_url(settings)) as conn:
        rows = conn.execute(
            "select id, rooms from public.agent_workers where seen_at > now() - interval '15 seconds'"
        ).fetchall()
    return {pid: rooms for pid in pids for worker_id, rooms in rows if f":{pid}:" in worker_id}


async def _agent_in(settings: Settings, room: str) -> bool:
    async with server_api(settings) as lk:
        people = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    return any(p.kind == lk_models.ParticipantInfo.Kind.AGENT for p in people.participants)


def _conversation_of(settings: Settings, room: str) -> tuple[str, int] | None:
    with psycopg.connect(admin_database_url(settings)) as conn:
        row = conn.execute(
            """select c.status, (select count(*) from public.turns t where t.conversation_id = c.id)
               from public.conversations c where c.room_name = %s""",
            [room],
        ).fetchone()
    return (str(row[0]), int(row[1])) if row else None


async def test_two_workers_share_rooms_and_a_dying_one_loses_nothing(
    two_workers: list[AgentService],
    settings: Settings,
    admin_dsn: str,
    jwt_secret: str,
    clients: list[VoiceClient],
) -> None:
    first_pid, second_pid = (worker.pid() for worker in two_workers)
    assert first_pid is not None
    assert second_pid is not None
    # LiveKit gives a room to a worker with room to spare (weighted by its load): with the
    # first worker full, the second room goes to the other.
    for _ in range(2):
        clients.append(await _room_with_client(settings, admin_dsn, jwt_secret))
        voice = clients[-1]
        assert await voice.wait_for_agent_audio(time.monotonic() - 5, timeout_s=60) is not None
    deadline = time.monotonic() + 20  # rooms held are reported with each 5 s heartbeat
    while (held := _rooms_by_worker(settings, [first_pid, second_pid])) != {
        first_pid: 1,
        second_pid: 1,
    }:
        assert time.monotonic() < deadline, f"rooms were not shared by load: {held}"
        await asyncio.sleep(1)
    await asyncio.sleep(4)  # let both greetings finish and be recorded

    # One worker's machine dies: the worker and its job processes at once.
    worker = psutil.Process(second_pid)
    for process in [*worker.children(recursive=True), worker]:
        process.kill()
    deadline = time.monotonic() + 60
    while all([await _agent_in(settings, v.room.name) for v in clients]):
        assert time.monotonic() < deadline, "no room lost its agent"
        await asyncio.sleep(1)
    orphaned = [v for v in clients if not await _agent_in(settings, v.room.name)]
    served = [v for v in clients if v not in orphaned]
    assert len(orphaned) == 1, "both rooms lost their agent with one worker"
    assert len(served) == 1

    # The other conversation goes on as if nothing happened.
    ended = await served[0].say(str(_utterance(LIBRIVOX_0880)), then_silence_s=0.2)
    assert await served[0].wait_for_agent_audio(ended + 0.2, timeout_s=60) is not None

    # The dead worker's conversation is closed as interrupted by a living worker's journal
    # recovery, with the greeting it completed kept.
    room = orphaned[0].room.name
    deadline = time.monotonic() + 90
    while (found := _conversation_of(settings, room)) is None or found[0] == "active":
        assert time.monotonic() < deadline, f"the dead worker's conversation stayed open: {found}"
        await asyncio.sleep(2)
    assert found[0] == "interrupted"
    assert found[1] >= 1

    # The next Start gets the survivor, once its room has ended (it holds one at most).
    await served[0].close()
    clients.remove(served[0])
    deadline = time.monotonic() + 60
    while _rooms_by_worker(settings, [first_pid]) != {first_pid: 0}:
        assert time.monotonic() < deadline, "the surviving worker never freed its room"
        await asyncio.sleep(1)
    clients.append(await _room_with_client(settings, admin_dsn, jwt_secret))
    # As the Conversation page does: if LiveKit still counted the worker full and dropped
    # the dispatch, dispatch again until a worker takes the room.
    waited: list[float] = []
    got = wait_for_agent(
        settings,
        clients[-1].room.name,
        connect=fresh_connections(admin_dsn, name="tests"),
        on_wait=waited.append,
        retry_s=2.0,
    )
    assert await asyncio.wait_for(got, 90) is True
    assert await clients[-1].wait_for_agent_audio(time.monotonic() - 5, timeout_s=60) is not None
