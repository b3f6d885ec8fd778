"""Turn-insert throughput (repository vs COPY) and dashboard-view latency at 10^6 turns.

Runs against the local stack's cluster (`./dev up` first) in a scratch database
it creates and drops. Prints two tables.

    ./dev bench bench/db_throughput.py [--turns 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from stack.instances import require_test_instance
from tests.support.databases import scratch_database
from workbench.config import get_settings
from workbench.db.connection import admin_database_url, service_session
from workbench.db.models import TurnDraft
from workbench.db.repositories import AnalyticsRepo, ConversationsRepo


def _drafts(conversation_id: uuid.UUID, start: int, count: int) -> list[TurnDraft]:
    now = datetime.now(UTC)
    return [
        TurnDraft(
            conversation_id=conversation_id,
            idx=start + i,
            role="agent" if i % 2 else "user",
            text="the quick brown fox jumps over the lazy dog",
            started_at=now,
            ended_at=now + timedelta(seconds=1),
            stt_s=0.2,
            llm_ttft_s=0.3,
            tts_ttfb_s=0.1,
            v2v_s=0.9,
        )
        for i in range(count)
    ]


async def insert_throughput(dsn: str, user_id: uuid.UUID) -> list[tuple[str, int, float]]:
    rows = []
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        async with service_session(conn, acting_for=user_id):
            conversation = await ConversationsRepo(conn).start(owner_id=user_id)
        drafts = _drafts(conversation.id, 0, 2_000)
        t0 = time.perf_counter()
        async with service_session(conn, acting_for=user_id):
            repo = ConversationsRepo(conn)
            for draft in drafts:
                await repo.add_turn(draft)
        rows.append(
            ("repository add_turn (one round trip each)", len(drafts), time.perf_counter() - t0)
        )

        drafts = _drafts(conversation.id, 10_000, 20_000)
        t0 = time.perf_counter()
        async with service_session(conn, acting_for=user_id):
            await ConversationsRepo(conn).add_turns(drafts)
        rows.append(
            (
                "repository add_turns (one INSERT per 1000 turns)",
                len(drafts),
                time.perf_counter() - t0,
            )
        )

        # 10^5 agent turns into one conversation: each insert pairs its heard latency
        # (turns_take_heard_latency), deriving the turn's agent ordinal when the writer does
        # not state it; then the same without the trigger, for the cost it adds.
        count = 100_000
        columns = "conversation_id, idx, role, text, started_at, ended_at, v2v_s"
        for label, trigger, stated in (
            ("raw COPY, agent ordinal derived in SQL", True, False),
            ("raw COPY, agent ordinal stated (the recorder)", True, True),
            ("raw COPY, heard-latency triggers off", False, True),
        ):
            async with service_session(conn, acting_for=user_id):
                target = await ConversationsRepo(conn).start(owner_id=user_id)
            if not trigger:
                await conn.execute(
                    "alter table public.turns disable trigger turns_take_heard_latency"
                )
            copy_sql = (
                f"copy public.turns ({columns}{', agent_ordinal' if stated else ''}) from stdin"
            )
            now = datetime.now(UTC)
            t0 = time.perf_counter()
            async with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                for i in range(count):
                    row = (target.id, i, "agent", "copied text", now, now, 0.9)
                    await copy.write_row((*row, i) if stated else row)
            rows.append((label, count, time.perf_counter() - t0))
            if not trigger:
                await conn.execute(
                    "alter table public.turns enable trigger turns_take_heard_latency"
                )
    return rows


def seed_million(dsn: str, user_id: uuid.UUID, turns: int) -> float:
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        prompt = conn.execute(
            "insert into public.system_prompts (slug, title, created_by) values ('bench', 'Bench', %s) returning id",
            [user_id],
        ).fetchone()[0]  # type: ignore[index]
        versions = [
            conn.execute(
                "insert into public.prompt_versions (prompt_id, version, body, author_id) values (%s, 0, %s, %s) returning id",
                [prompt, f"prompt {i}", user_id],
            ).fetchone()[0]  # type: ignore[index]
            for i in range(3)
        ]
        conversations = max(1, turns // 1000)
        conn.execute(
            """insert into public.conversations (id, owner_id, status, started_at, ended_at, prompt_version_id, model_specs)
               select gen_random_uuid(), %s, 'completed', now() - (g %% 60) * interval '1 day',
                      now() - (g %% 60) * interval '1 day' + interval '10 minutes',
                      (%s::uuid[])[1 + g %% 3], jsonb_build_object('name', case when g %% 2 = 0 then 'cpu-small' else 'gpu-large' end)
               from generate_series(1, %s) g""",
            [user_id, versions, conversations],
        )
        conn.execute(
            """insert into public.turns (conversation_id, idx, role, text, started_at, ended_at,
                                        eou_delay_s, stt_s, llm_ttft_s, tts_ttfb_s, v2v_s, interrupted, created_at)
               select c.id, i, case when i %% 2 = 0 then 'user' else 'agent' end, 'synthetic turn',
                      c.started_at, c.started_at, random() * 0.3, random() * 0.4, random() * 0.6, random() * 0.2,
                      0.5 + random(), random() < 0.05, c.started_at
               from public.conversations c cross join generate_series(0, %s - 1) i
               where c.prompt_version_id = any(%s)""",
            [turns // conversations, versions],
        )
        conn.execute("analyze public.turns, public.conversations")
    return time.perf_counter() - t0


def refresh_rollup(dsn: str) -> float:
    """Seconds to bring the latency rollup up to date after the bulk load (every group stale)."""
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select private.refresh_latency_rollup()")
    return time.perf_counter() - t0


async def view_latency(
    dsn: str, user_id: uuid.UUID, repeats: int = 15
) -> list[tuple[str, float, float]]:
    from tests.support.personas import create_user, session_as  # same path a user's request takes

    with psycopg.connect(dsn, autocommit=True) as conn:
        secret = get_settings().supabase_jwt_secret
        assert secret is not None
        researcher = create_user(
            conn, name="bench-r", role="researcher", jwt_secret=secret.get_secret_value()
        )
    now = datetime.now(UTC)
    results = []
    queries = {
        "latency_daily, 30 days, all prompts": lambda r: r.latency_daily(
            since=now - timedelta(days=30), until=now
        ),
        "latency_daily, 7 days, one stack": lambda r: r.latency_daily(
            since=now - timedelta(days=7), until=now, model_stack="cpu-small"
        ),
        "activity_daily, 60 days": lambda r: r.activity_daily(
            since=now - timedelta(days=60), until=now
        ),
    }
    for name, query in queries.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            async with session_as(dsn, researcher) as conn:
                await query(AnalyticsRepo(conn))
            times.append(time.perf_counter() - t0)
        times.sort()
        results.append((name, statistics.median(times), times[int(0.95 * (len(times) - 1))]))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=1_000_000)
    args = parser.parse_args()
    require_test_instance(get_settings(), "bench/db_throughput.py")
    with scratch_database(
        admin_database_url(get_settings()), with_migrations=True, prefix="vwb_bench"
    ) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            user_id = uuid.uuid4()
            conn.execute(
                "insert into auth.users (id, email, raw_user_meta_data) values (%s, 'bench@example.org', %s)",
                [user_id, Jsonb({})],
            )
        rows = asyncio.run(insert_throughput(dsn, user_id))
        print("\nTurn inserts (service session, one user)\n")
        print(f"| {'method':<48} | {'rows':>7} | {'rows/s':>9} |")
        print(f"|{'-' * 50}|{'-' * 9}|{'-' * 11}|")
        for method, count, seconds in rows:
            print(f"| {method:<48} | {count:>7} | {count / seconds:>9,.0f} |")
        seconds = seed_million(dsn, user_id, args.turns)
        refresh = refresh_rollup(dsn)
        results = asyncio.run(view_latency(dsn, user_id))
        print(
            f"\nDashboard views at {args.turns:,} turns (seeded in {seconds:.0f} s; the latency "
            f"rollup of all of them rebuilt in {refresh:.1f} s), researcher under RLS\n"
        )
        print(f"| {'query':<40} | {'p50 ms':>8} | {'p95 ms':>8} |")
        print(f"|{'-' * 42}|{'-' * 10}|{'-' * 10}|")
        for query, p50, p95 in results:
            print(f"| {query:<40} | {p50 * 1000:>8.0f} | {p95 * 1000:>8.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
