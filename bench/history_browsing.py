"""History's conversation list at scale: 10^5 conversations of 10^3 participants, as a researcher.

In a scratch database of the tests' instance (made and dropped here) it seeds
participants, conversations with ten turns each (varied words, so a text search
has to look), simulated calls and annotations, then times `SessionsRepo.browse`
under a researcher's RLS session: the first page, and each kind of filter. The
issue's target: each under 300 ms p95 at the database.

    ./dev bench bench/history_browsing.py [--conversations 100000] [--participants 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stack.instances import require_test_instance
from tests.support.databases import scratch_database
from tests.support.personas import create_user, session_as
from workbench.config import get_settings
from workbench.db.connection import admin_database_url
from workbench.db.repositories.sessions import SessionQuery, SessionsRepo

WORDS = [
    "pizza",
    "order",
    "weather",
    "london",
    "paris",
    "trip",
    "umbrella",
    "train",
    "ticket",
    "dentist",
    "appointment",
    "timer",
    "pasta",
    "story",
    "dragon",
    "lights",
    "music",
    "piano",
    "football",
    "bread",
    "eggs",
    "butter",
    "recipe",
]


def seed(dsn: str, conversations: int, participants: int) -> float:
    """Participants, their conversations (ten turns each), simulated calls and annotations."""
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """insert into auth.users (id, email, raw_user_meta_data)
               select gen_random_uuid(), 'p' || g || '@example.org',
                      jsonb_build_object('display_name', 'Participant ' || g)
               from generate_series(1, %s) g""",
            [participants],
        )
        conn.execute(
            """insert into public.conversations (id, owner_id, status, started_at, ended_at, model_specs)
               select gen_random_uuid(), u.ids[1 + g %% %s], 'completed',
                      now() - (g %% 365) * interval '1 day', now() - (g %% 365) * interval '1 day',
                      jsonb_build_object('name', case when g %% 3 = 0 then 'cpu-hf' else 'cpu-small' end)
               from generate_series(1, %s) g,
                    (select array_agg(id) ids from auth.users where email like 'p%%@example.org') u""",
            [participants, conversations],
        )
        conn.execute(
            """insert into public.turns (conversation_id, idx, role, text, started_at, ended_at, v2v_s)
               select c.id, i, case when i %% 2 = 0 then 'user' else 'agent' end,
                      'about the ' || (%s::text[])[1 + (abs(hashtext(c.id::text || i)) %% %s)]
                        || ' and the ' || (%s::text[])[1 + (abs(hashtext(i || c.id::text)) %% %s)]
                        || ' ' || left(md5(c.id::text || i), 6),
                      c.started_at, c.started_at, 0.5 + random()
               from public.conversations c cross join generate_series(0, 9) i""",
            [list(WORDS), len(WORDS), list(WORDS), len(WORDS)],
        )
        conn.execute(
            """insert into public.simulated_calls (conversation_id, run_id, suite, scenario, passed)
               select id, gen_random_uuid(), 'smoke', 'greeting', random() < 0.5
               from public.conversations tablesample bernoulli (10)"""
        )
        conn.execute("insert into public.annotation_tags (name) values ('off-topic'), ('good')")
        conn.execute(
            """insert into public.annotations (conversation_id, author_id, rating)
               select c.id, (select id from auth.users order by email limit 1), 1 + (random() * 4)::int
               from public.conversations c tablesample bernoulli (5)"""
        )
        conn.execute(
            """insert into public.annotation_labels (annotation_id, tag_id)
               select a.id, (select id from public.annotation_tags where name = 'off-topic')
               from public.annotations a where a.rating <= 2"""
        )
        conn.execute("analyze")
    return time.perf_counter() - t0


async def timings(dsn: str, researcher: Any, repeats: int) -> list[tuple[str, int, float, float]]:
    """(query, rows matched, p50 s, p95 s) for the first page and each kind of filter."""
    queries = {
        "first page (newest)": SessionQuery(),
        "page 100": SessionQuery(page=99),
        "words said: 'umbrella'": SessionQuery(text="umbrella"),
        "words said: a rare word": SessionQuery(text="zz9plural"),
        "participant (id start)": SessionQuery(participant="0"),
        "simulated callers": SessionQuery(kind="simulated"),
        "tag off-topic": SessionQuery(tag="off-topic"),
        "last 7 days, cpu-hf": SessionQuery(since=date.today() - timedelta(days=7), stack="cpu-hf"),
        "most turns": SessionQuery(sort="most turns"),
    }
    rows = []
    for name, query in queries.items():
        times, total = [], 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            async with session_as(dsn, researcher) as conn:
                total = (await SessionsRepo(conn).browse(query)).total
            times.append(time.perf_counter() - t0)
        times.sort()
        rows.append((name, total, statistics.median(times), times[int(0.95 * (len(times) - 1))]))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--participants", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    settings = get_settings()
    require_test_instance(settings, "bench/history_browsing.py")
    with scratch_database(
        admin_database_url(settings), with_migrations=True, prefix="vwb_bench"
    ) as dsn:
        seconds = seed(dsn, args.conversations, args.participants)
        secret = settings.supabase_jwt_secret
        assert secret is not None
        with psycopg.connect(dsn, autocommit=True) as conn:
            researcher = create_user(
                conn, name="bench-r", role="researcher", jwt_secret=secret.get_secret_value()
            )
        rows = asyncio.run(timings(dsn, researcher, args.repeats))
    print(
        f"\nHistory list, {args.conversations:,} conversations of {args.participants:,} "
        f"participants, {args.conversations * 10:,} turns (seeded in {seconds:.0f} s), "
        "researcher under RLS, 25 a page\n"
    )
    print("| query | matched | p50 ms | p95 ms |")
    print("|---|---|---|---|")
    for name, total, p50, p95 in rows:
        print(f"| {name} | {total:,} | {p50 * 1000:.0f} | {p95 * 1000:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
