"""Browsing and annotating conversations as History does: what RLS lets each role read, every filter, paging.

One fresh database per module: a plain user with three conversations (one
mentions "100% pizza", one has a corrected transcript), another user with one
human and one simulated conversation, and a researcher who reads them all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from tests.support.personas import Persona, create_user, recorded_as, session_as
from workbench.db.errors import InvalidInput
from workbench.db.models import TurnDraft
from workbench.db.repositories import AnnotationsRepo, ConversationsRepo
from workbench.db.repositories.sessions import SessionQuery, SessionsRepo

pytestmark = pytest.mark.integration


@dataclass
class Seeded:
    people: dict[str, Persona]
    pizza: UUID
    corrected: UUID
    simulated: UUID
    old: UUID


def _turn(conversation_id: UUID, idx: int, text: str) -> TurnDraft:
    now = datetime.now(UTC)
    return TurnDraft(
        conversation_id=conversation_id,
        idx=idx,
        role="user" if idx % 2 == 0 else "agent",
        text=text,
        started_at=now,
        ended_at=now + timedelta(seconds=1),
    )


async def _conversation(dsn: str, persona: Persona, *texts: str, stack: str = "cpu-small") -> UUID:
    async with recorded_as(dsn, persona) as conn:
        repo = ConversationsRepo(conn)
        conversation = await repo.start(
            room_name=f"r-{uuid.uuid4().hex[:8]}", model_specs={"name": stack}
        )
        for idx, text in enumerate(texts):
            await repo.add_turn(_turn(conversation.id, idx, text))
    return conversation.id


@pytest.fixture(scope="module")
async def seeded(app_db: str, jwt_secret: str) -> Seeded:
    with psycopg.connect(app_db, autocommit=True) as conn:
        people = {
            "ann": create_user(
                conn, name="ann", role="user", jwt_secret=jwt_secret, display_name="Ann"
            ),
            "bob": create_user(
                conn, name="bob", role="user", jwt_secret=jwt_secret, display_name="Bob"
            ),
            "researcher": create_user(conn, name="res", role="researcher", jwt_secret=jwt_secret),
            "admin": create_user(conn, name="adm", role="admin", jwt_secret=jwt_secret),
        }
    ann, bob = people["ann"], people["bob"]
    old = await _conversation(app_db, ann, "An old chat about trains.", "Trains are fun.")
    pizza = await _conversation(app_db, ann, "I want a 100% pizza night.", "Sounds tasty.")
    corrected = await _conversation(app_db, ann, "wether report", "Sunny.", stack="cpu-hf")
    await _conversation(app_db, bob, "Hello there.")
    simulated = await _conversation(app_db, bob, "What is the capital of France?", "Paris.")
    with psycopg.connect(app_db, autocommit=True) as conn:
        conn.execute(
            "update public.conversations set started_at = now() - interval '40 days' where id = %s",
            [old],
        )
        conn.execute(
            "update public.turns set reference_text = 'weather report' where conversation_id = %s and idx = 0",
            [corrected],
        )
        conn.execute(
            """insert into public.simulated_calls (conversation_id, run_id, suite, scenario, passed)
               values (%s, %s, 'smoke', 'factual-question', true)""",
            [simulated, uuid.uuid4()],
        )
    return Seeded(people, pizza=pizza, corrected=corrected, simulated=simulated, old=old)


async def _browse(dsn: str, persona: Persona, **query: Any) -> tuple[list[UUID], int]:
    async with session_as(dsn, persona) as conn:
        page = await SessionsRepo(conn).browse(SessionQuery(**query))
    return [row.id for row in page.rows], page.total


async def test_a_user_sees_only_their_own_a_researcher_everyones(
    app_db: str, seeded: Seeded
) -> None:
    own, total = await _browse(app_db, seeded.people["ann"])
    assert total == 3
    assert own[:2] == [seeded.corrected, seeded.pizza]  # newest first
    everyone, total = await _browse(app_db, seeded.people["researcher"])
    assert total == 5
    assert set(own) < set(everyone)
    async with session_as(app_db, seeded.people["ann"]) as conn:
        mine = (await SessionsRepo(conn).browse(SessionQuery())).rows
    assert {row.participant for row in mine} == {"Ann"}  # their own profile they read
    # The words-said search (a definer function, for the index) keeps the same rule.
    assert await _browse(app_db, seeded.people["ann"], text="Hello there") == ([], 0)
    assert (await _browse(app_db, seeded.people["researcher"], text="Hello there"))[1] == 1
    assert (await _browse(app_db, seeded.people["ann"], text="pizza"))[1] == 1
    # A filter only narrows what RLS lets through: a user asking for another's sees nothing.
    assert await _browse(app_db, seeded.people["ann"], owner_id=seeded.people["bob"].id) == ([], 0)


async def test_each_filter_narrows_the_list(app_db: str, seeded: Seeded) -> None:
    researcher = seeded.people["researcher"]
    assert await _browse(app_db, researcher, kind="simulated") == ([seeded.simulated], 1)
    assert (await _browse(app_db, researcher, kind="human"))[1] == 4
    assert await _browse(app_db, researcher, text="100% PIZZA") == ([seeded.pizza], 1)
    assert (await _browse(app_db, researcher, text="100%_"))[1] == 0  # % and _ are literal
    assert await _browse(app_db, researcher, text="weather report") == ([seeded.corrected], 1)
    assert await _browse(app_db, researcher, corrected_only=True) == ([seeded.corrected], 1)
    assert await _browse(app_db, researcher, stack="cpu-hf") == ([seeded.corrected], 1)
    ann_prefix = str(seeded.people["ann"].id)[:6]
    assert (await _browse(app_db, researcher, participant=ann_prefix))[1] == 3
    recent = date.today() - timedelta(days=7)
    assert (await _browse(app_db, researcher, since=recent))[1] == 4
    ended = date.today() - timedelta(days=30)
    assert await _browse(app_db, researcher, until=ended) == ([seeded.old], 1)


async def test_researchers_see_participant_codes_admins_names(app_db: str, seeded: Seeded) -> None:
    """Profiles are the owner's and the admins' to read: a researcher gets a short id, never a name."""
    ann = seeded.people["ann"]
    async with session_as(app_db, seeded.people["researcher"]) as conn:
        rows = (await SessionsRepo(conn).browse(SessionQuery(owner_id=ann.id))).rows
    assert {row.participant for row in rows} == {str(ann.id)[:8]}
    async with session_as(app_db, seeded.people["admin"]) as conn:
        rows = (await SessionsRepo(conn).browse(SessionQuery(participant="bob"))).rows
    assert [row.participant for row in rows] == ["Bob", "Bob"]
    assert rows[0].simulated == "smoke/factual-question"
    assert rows[0].passed is True
    assert rows[0].turns == 2


async def test_pages_sorts_and_a_page_past_the_end(app_db: str, seeded: Seeded) -> None:
    researcher = seeded.people["researcher"]
    first, total = await _browse(app_db, researcher, page_size=2)
    second, _ = await _browse(app_db, researcher, page_size=2, page=1)
    third, _ = await _browse(app_db, researcher, page_size=2, page=2)
    assert total == 5
    assert len(first) == len(second) == 2
    assert len(third) == 1
    assert not set(first) & set(second)
    oldest, _ = await _browse(app_db, researcher, sort="oldest", page_size=1)
    assert oldest == [seeded.old]
    assert await _browse(app_db, researcher, page=9) == ([], 5)  # the count still comes back


def test_values_out_of_bounds_are_refused_before_any_query() -> None:
    with pytest.raises(ValueError, match="page_size"):
        SessionQuery(page_size=10_000)
    with pytest.raises(ValueError, match="text"):
        SessionQuery(text="x" * 201)
    with pytest.raises(ValueError, match="sort"):
        SessionQuery(sort="random")  # type: ignore[arg-type]


async def test_annotations_are_saved_whole_listed_and_filter_the_list(
    app_db: str, seeded: Seeded
) -> None:
    researcher, admin = seeded.people["researcher"], seeded.people["admin"]
    async with session_as(app_db, admin) as conn:
        repo = AnnotationsRepo(conn)
        await repo.add_tag("Off-topic", "the reply answered something else")
        await repo.add_tag("good-answer")
    async with session_as(app_db, researcher) as conn:
        turns = await ConversationsRepo(conn).turns(seeded.pizza)
        repo = AnnotationsRepo(conn)
        whole = await repo.save(seeded.pizza, turn_id=None, rating=4, note="fine", tags=[])
        reply = await repo.save(
            seeded.pizza, turn_id=turns[1].id, rating=2, note="", tags=["off-topic", "good-answer"]
        )
        again = await repo.save(
            seeded.pizza, turn_id=turns[1].id, rating=1, note="worse", tags=["off-topic"]
        )
        with pytest.raises(InvalidInput, match="not in the tag vocabulary: made-up"):
            await repo.save(seeded.pizza, turn_id=None, rating=3, note="", tags=["made-up"])
        listed = await repo.of_conversation(seeded.pizza)
    assert again.id == reply.id  # one annotation per researcher and turn, replaced whole
    assert [(a.turn_idx, a.rating, a.note, a.tags) for a in listed] == [
        (None, 4, "fine", []),  # the refused save changed nothing
        (1, 1, "worse", ["off-topic"]),
    ]
    assert whole.author_id == researcher.id
    assert await _browse(app_db, researcher, tag="off-topic") == ([seeded.pizza], 1)
    assert await _browse(app_db, researcher, tag="good-answer") == ([], 0)
    assert await _browse(app_db, researcher, max_rating=1) == ([seeded.pizza], 1)
    async with session_as(app_db, researcher) as conn:
        row = (await SessionsRepo(conn).browse(SessionQuery(tag="off-topic"))).rows[0]
    assert row.rating == 2.5
    assert row.tags == ["off-topic"]
    # The participant sees none of it, not even on their own conversation.
    async with session_as(app_db, seeded.people["ann"]) as conn:
        assert await AnnotationsRepo(conn).of_conversation(seeded.pizza) == []
        own = (await SessionsRepo(conn).browse(SessionQuery())).rows
    assert {(r.rating, tuple(r.tags)) for r in own} == {(None, ())}
