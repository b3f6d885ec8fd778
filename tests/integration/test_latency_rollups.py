"""The dashboard rollups give exactly what aggregating every row gives, for each reader, as rows change."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.personas import Persona, create_user, session_as

pytestmark = pytest.mark.integration

# What the view means, aggregated from every row at read time under RLS: the agent's
# side of each reply (voice to voice, LLM, TTS, interruptions) from agent turns, the
# user's side (end of utterance, STT: the agent records them on the user's turn) from
# user turns. The fixture writes stage values on both roles, so taking a side from the
# wrong role shows.
RAW = """
select date_trunc('day', t.created_at) as day, c.prompt_version_id,
       coalesce(c.model_specs ->> 'name', 'unnamed') as model_stack,
       count(*) filter (where t.role = 'agent') as turns,
       percentile_cont(0.5) within group (order by t.v2v_s) filter (where t.role = 'agent'),
       percentile_cont(0.95) within group (order by t.v2v_s) filter (where t.role = 'agent'),
       avg(t.eou_delay_s) filter (where t.role = 'user') as eou_delay_mean_s,
       avg(t.stt_s) filter (where t.role = 'user') as stt_mean_s,
       avg(t.llm_ttft_s) filter (where t.role = 'agent') as llm_ttft_mean_s,
       avg(t.tts_ttfb_s) filter (where t.role = 'agent') as tts_ttfb_mean_s,
       avg(t.interrupted::int) filter (where t.role = 'agent') as interruption_rate
from public.turns t join public.conversations c on c.id = t.conversation_id
group by 1, 2, 3
having count(*) filter (where t.role = 'agent') > 0
"""
RAW_ACTIVITY = """
select date_trunc('day', c.started_at) as day, count(distinct c.id) as conversations,
       count(t.id) as turns
from public.conversations c left join public.turns t on t.conversation_id = c.id
group by 1
"""
ACTIVITY = "select day, conversations, turns from public.analytics_activity_daily"
ROLLUP = """
select day, prompt_version_id, model_stack, turns, v2v_p50_s, v2v_p95_s, eou_delay_mean_s,
       stt_mean_s, llm_ttft_mean_s, tts_ttfb_mean_s, interruption_rate
from public.analytics_latency_daily
"""


@pytest.fixture(scope="module")
def people(app_db: str, jwt_secret: str) -> Iterator[dict[str, Persona]]:
    with psycopg.connect(app_db, autocommit=True) as conn:
        yield {
            name: create_user(conn, name=name, role=role, jwt_secret=jwt_secret)
            for name, role in (("a", "user"), ("b", "user"), ("r", "researcher"))
        }


def _conversation(conn: psycopg.Connection[Any], owner: uuid.UUID, stack: str) -> uuid.UUID:
    row = conn.execute(
        "insert into public.conversations (owner_id, model_specs) values (%s, %s) returning id",
        [owner, Jsonb({"name": stack})],
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _turns(conn: psycopg.Connection[Any], conversation: uuid.UUID, day: datetime, n: int) -> None:
    """n exchanges on `day`; agent turns with varied latency, some stages missing, some interrupted."""
    conn.execute(
        """insert into public.turns (conversation_id, idx, role, text, started_at, ended_at,
                                    eou_delay_s, stt_s, llm_ttft_s, tts_ttfb_s, v2v_s, interrupted, created_at)
           select %s, i, case when i %% 2 = 0 then 'user' else 'agent' end, 'x', %s, %s,
                  (i %% 7) / 10.0, case when i %% 5 = 0 then null else (i %% 3) / 10.0 end,
                  0.2, 0.05, 0.5 + (i * 37 %% 101) / 50.0, i %% 11 = 1, %s + i * interval '1 second'
           from generate_series(coalesce((select max(idx) + 1 from public.turns
                                          where conversation_id = %s), 0),
                                coalesce((select max(idx) + 1 from public.turns
                                          where conversation_id = %s), 0) + %s - 1) i""",
        [conversation, day, day, day, conversation, conversation, 2 * n],
    )


async def _rows(dsn: str, persona: Persona, query: str) -> list[tuple[Any, ...]]:
    async with session_as(dsn, persona) as conn:
        await conn.execute("set local timezone = 'UTC'")
        cur = await conn.execute(query)
        rows = await cur.fetchall()
    return sorted(
        (tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows),
        key=str,
    )


async def _same(dsn: str, persona: Persona) -> None:
    assert await _rows(dsn, persona, ROLLUP) == await _rows(dsn, persona, RAW), persona.name
    assert await _rows(dsn, persona, ACTIVITY) == await _rows(dsn, persona, RAW_ACTIVITY)


async def _same_for_everyone(dsn: str, people: dict[str, Persona]) -> None:
    for persona in people.values():
        await _same(dsn, persona)
        assert await _rows(dsn, persona, RAW), persona.name  # each has something to see


async def test_the_rollup_equals_the_raw_aggregate_as_turns_change(
    app_db: str, people: dict[str, Persona]
) -> None:
    a, b = people["a"].id, people["b"].id
    assert a is not None
    assert b is not None
    today = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    with psycopg.connect(app_db, autocommit=True) as conn:
        a_small = _conversation(conn, a, "cpu-small")
        a_hf = _conversation(conn, a, "cpu-hf")
        b_small = _conversation(conn, b, "cpu-small")
        for conversation, day, n in (
            (a_small, yesterday, 40),
            (a_small, today, 25),
            (a_hf, today, 13),
            (b_small, today, 31),
        ):
            _turns(conn, conversation, day, n)
    # A user sees their own groups, a researcher everyone's: percentiles across owners.
    await _same_for_everyone(app_db, people)

    with psycopg.connect(app_db, autocommit=True) as conn:
        _turns(conn, b_small, yesterday, 9)  # a new day for b
        conn.execute(
            "update public.turns set v2v_s = v2v_s + 3 where conversation_id = %s and idx < 10",
            [a_small],
        )
        conn.execute("delete from public.turns where conversation_id = %s and idx > 20", [a_hf])
    await _same_for_everyone(app_db, people)

    with psycopg.connect(app_db, autocommit=True) as conn:
        conn.execute(  # the stack of a conversation is corrected: its turns change groups
            "update public.conversations set model_specs = %s where id = %s",
            [Jsonb({"name": "gpu-large"}), a_hf],
        )
        conn.execute("delete from public.conversations where id = %s", [b_small])
    for persona in (people["a"], people["r"]):
        await _same(app_db, persona)
    assert await _rows(app_db, people["b"], ROLLUP) == []
    assert await _rows(app_db, people["b"], ACTIVITY) == []

    with psycopg.connect(app_db, autocommit=True) as conn:  # a conversation with no turns yet,
        _conversation(conn, b, "cpu-small")  # and one moved to another day
        conn.execute(
            "update public.conversations set started_at = started_at - interval '3 days'"
            " where id = %s",
            [a_small],
        )
    for persona in people.values():
        await _same(app_db, persona)
    assert await _rows(app_db, people["b"], ACTIVITY)  # the new one counts, with no turns


async def test_writing_turns_only_notes_stale_groups(
    app_db: str, people: dict[str, Persona]
) -> None:
    a = people["a"].id
    assert a is not None
    day = datetime(2026, 1, 5, 9, tzinfo=UTC)
    with psycopg.connect(app_db, autocommit=True) as conn:
        conn.execute("select public.latency_daily_rows()").fetchall()  # nothing stale now
        conversation = _conversation(conn, a, "cpu-small")
        _turns(conn, conversation, day, 500)  # one statement, 500 agent turns
        stale = conn.execute(
            "select day, owner_id from private.latency_rollup_stale where day = %s", [day.date()]
        ).fetchall()
    assert stale == [(datetime(2026, 1, 5, tzinfo=UTC), a)]  # one row, not 500


async def test_simulated_callers_traffic_is_kept_apart_from_peoples(
    app_db: str, jwt_secret: str, people: dict[str, Persona]
) -> None:
    """Analytics reads people's conversations; a simulation account's are its own kind,
    also when the account is marked only after its turns were rolled up."""
    researcher = people["r"]
    with psycopg.connect(app_db, autocommit=True) as conn:
        caller = create_user(conn, name="caller", role="researcher", jwt_secret=jwt_secret)
        assert caller.id is not None
        day = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
        _turns(conn, _conversation(conn, caller.id, "sim-stack"), day, 4)

    def kinds(rows: list[tuple[Any, ...]]) -> set[bool]:
        return {simulated for stack, simulated, _turns in rows if stack == "sim-stack"}

    latency = "select model_stack, simulated, turns from public.analytics_latency_daily"
    assert kinds(await _rows(app_db, researcher, latency)) == {False}  # not marked yet

    with psycopg.connect(app_db, autocommit=True) as conn:
        conn.execute("set role service_role")
        conn.execute("update public.profiles set simulated = true where id = %s", [caller.id])
    rows = await _rows(app_db, researcher, latency)
    assert kinds(rows) == {True}
    assert [r for r in rows if r[0] == "sim-stack"] == [("sim-stack", True, 4)]

    activity = (
        "select simulated, sum(conversations) from public.analytics_activity_daily group by 1"
    )
    assert dict(await _rows(app_db, researcher, activity))[True] == 1
    # The account cannot unmark itself: the column is the service's.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with session_as(app_db, caller) as conn:
            await conn.execute("update public.profiles set simulated = false where id = auth.uid()")
