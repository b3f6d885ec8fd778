"""LiveKit in multi-node mode: two nodes sharing one Redis, rooms on both, a conversation on each.

The stack's single LiveKit node and its worker give way to the stack as
`WORKBENCH_LIVEKIT_NODES=2 WORKBENCH_AGENT_WORKERS=2 ./dev up` runs it (Redis,
`livekit` and `livekit-2`, one worker registered with each node), and are
back afterwards. The web app keeps talking to the first node; where a room
lives is LiveKit's choice (the node holding fewest rooms), read from Redis.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import psycopg
import pytest

from stack.redis_service import redis_hash
from stack.services import LocalStack
from tests.integration.test_agent_e2e import LIBRIVOX_0880, _utterance
from tests.support.personas import create_user
from workbench.config import Settings
from workbench.voice_client import VoiceClient, join_as_web_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(stack: LocalStack, settings: Settings) -> Iterator[LocalStack]:
    """The stack with two LiveKit nodes and two workers in place of one of each."""
    multi = LocalStack(
        settings.model_copy(update={"livekit_nodes": 2, "agent_workers": 2}), echo=lambda _: None
    )
    for agent in stack.agents:
        agent.stop()
    stack.livekit.stop()
    try:
        multi.up()  # Postgres, Auth and the web app are the running ones
        yield multi
    finally:
        for agent in multi.agents:
            agent.stop()
        for node in multi.livekit_nodes:
            node.stop()
        if multi.redis is not None:
            multi.redis.stop()
        stack.up()


def _node_of_room(cluster: LocalStack, room: str) -> str | None:
    """The node LiveKit placed `room` on (its routing table in Redis)."""
    assert cluster.redis is not None
    placed = redis_hash(("127.0.0.1", cluster.redis.port), "room_node_map").get(room)
    return placed.decode() if placed else None


async def test_rooms_spread_over_two_nodes_and_each_holds_a_conversation(
    cluster: LocalStack,
    settings: Settings,
    admin_dsn: str,
    jwt_secret: str,
    clients: list[VoiceClient],
) -> None:
    assert cluster.redis is not None
    nodes = redis_hash(("127.0.0.1", cluster.redis.port), "nodes")
    assert len(nodes) == 2, "both LiveKit nodes registered in Redis"
    assert {agent.livekit_url for agent in cluster.agents} == {
        node.url for node in cluster.livekit_nodes
    }, "one worker registered with each node"

    placed: list[str] = []
    for n in range(2):
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            user = create_user(conn, name=f"node{n}", role="user", jwt_secret=jwt_secret)
        assert user.id is not None
        voice = await join_as_web_app(settings, user.id)  # signalling through the first node
        clients.append(voice)
        assert await voice.wait_for_agent_audio(time.monotonic() - 5, timeout_s=60), "no greeting"
        await voice.silence(4.0)  # the greeting ends
        ended = await voice.say(str(_utterance(LIBRIVOX_0880)), then_silence_s=0.2)
        assert await voice.wait_for_agent_audio(ended + 0.2, timeout_s=60), "no answer"
        node = _node_of_room(cluster, voice.room.name)
        assert node in nodes
        placed.append(node)
        await asyncio.sleep(3)  # nodes report their room counts every 2 s
    assert len(set(placed)) == 2, f"both rooms on one node: {placed}"
