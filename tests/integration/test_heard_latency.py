"""Voice-to-voice as the browser heard it lands on the right agent turn, whichever is written first."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from tests.support.personas import Persona, create_user, recorded_as, session_as
from workbench.db.connection import service_session
from workbench.db.models import TurnDraft
from workbench.db.repositories import ConversationsRepo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def people(app_db: str, jwt_secret: str) -> dict[str, Persona]:
    with psycopg.connect(app_db, autocommit=True) as conn:
        return {
            n: create_user(conn, name=n, role="user", jwt_secret=jwt_secret)
            for n in ("talker", "other")
        }


def _turn(conversation_id, idx: int, role: str) -> TurnDraft:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    return TurnDraft(
        conversation_id=conversation_id,
        idx=idx,
        role=role,
        text=f"{role} {idx}",  # type: ignore[arg-type]
        started_at=now,
        ended_at=now,
    )


async def test_reports_before_and_after_the_agent_writes_its_turns(
    app_db: str, people: dict[str, Persona]
) -> None:
    talker = people["talker"]
    room = "heard-latency-room"
    async with session_as(app_db, talker) as conn:
        assert not await ConversationsRepo(conn).report_heard_latency(
            room_name=room, agent_ordinal=1, v2v_audio_s=1.5
        )  # no row yet
    async with recorded_as(app_db, talker) as conn:
        repo = ConversationsRepo(conn)
        conversation = await repo.start(room_name=room)
        # Greeting (agent #0) and the first answer (agent #1) already written by the agent...
        await repo.add_turns(
            [
                _turn(conversation.id, 0, "agent"),
                _turn(conversation.id, 1, "user"),
                _turn(conversation.id, 2, "agent"),
            ]
        )
    async with session_as(app_db, talker) as conn:
        repo = ConversationsRepo(conn)
        assert await repo.report_heard_latency(room_name=room, agent_ordinal=1, v2v_audio_s=1.5)
        # ...and a report that arrives before the agent writes reply #2.
        assert await repo.report_heard_latency(room_name=room, agent_ordinal=2, v2v_audio_s=2.25)
        assert not await repo.report_heard_latency(room_name=room, agent_ordinal=2, v2v_audio_s=9.0)
    async with (
        await psycopg.AsyncConnection.connect(app_db, autocommit=True) as raw,
        service_session(raw, acting_for=talker.id) as conn,
    ):
        await ConversationsRepo(conn).add_turns(
            [_turn(conversation.id, 3, "user"), _turn(conversation.id, 4, "agent")]
        )
    async with session_as(app_db, talker) as conn:
        heard = {t.idx: t.v2v_audio_s for t in await ConversationsRepo(conn).turns(conversation.id)}
    assert heard == {0: None, 1: None, 2: 1.5, 3: None, 4: 2.25}


async def test_no_reports_for_someone_elses_conversation(
    app_db: str, people: dict[str, Persona]
) -> None:
    async with recorded_as(app_db, people["talker"]) as conn:
        await ConversationsRepo(conn).start(room_name="private-room")
    async with session_as(app_db, people["other"]) as conn:
        assert not await ConversationsRepo(conn).report_heard_latency(
            room_name="private-room", agent_ordinal=0, v2v_audio_s=1.0
        )


async def test_agent_turns_carry_their_ordinal_stated_or_derived(
    app_db: str, people: dict[str, Persona]
) -> None:
    """The recorder states each agent turn's ordinal; other writers get it derived in SQL.

    A stated ordinal wins over position: when a refused agent turn left a gap, the
    browser's report for the next reply still lands on that reply.
    """
    talker = people["talker"]
    async with recorded_as(app_db, talker) as conn:
        repo = ConversationsRepo(conn)
        derived = await repo.start(room_name="ordinal-derived")
        await repo.add_turns(
            [_turn(derived.id, i, "agent" if i % 2 == 0 else "user") for i in range(7)]
        )
        turns = await repo.turns(derived.id)
        assert [(t.role, t.agent_ordinal) for t in turns] == [
            ("agent", 0),
            ("user", None),
            ("agent", 1),
            ("user", None),
            ("agent", 2),
            ("user", None),
            ("agent", 3),
        ]
        stated = await repo.start(room_name="ordinal-stated")
        greeting = _turn(stated.id, 0, "agent").model_copy(update={"agent_ordinal": 0})
        # agent #1 (idx 2) was refused and never stored; the recorder goes on counting
        answer = _turn(stated.id, 4, "agent").model_copy(update={"agent_ordinal": 2})
        await repo.add_turns([greeting, _turn(stated.id, 1, "user"), answer])
    async with session_as(app_db, talker) as conn:
        repo = ConversationsRepo(conn)
        assert await repo.report_heard_latency(
            room_name="ordinal-stated", agent_ordinal=2, v2v_audio_s=0.8
        )
        heard = {t.idx: t.v2v_audio_s for t in await repo.turns(stated.id)}
    assert heard[4] == pytest.approx(0.8)
    assert heard[0] is None
