"""Row-level security, table by table and role by role: who can select, insert, update, delete what.

The world: users A and B (role `user`), a researcher R and an admin M. A owns
a conversation with two turns, an analytics event, an export and an audio
object; B owns a conversation with one turn; the admin wrote a prompt with
two versions and an experiment; R ran an eval. Every expectation below is
enforced by Postgres (policies, grants, triggers), not by Python.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.personas import Persona, anon_persona, create_user, query_as

pytestmark = pytest.mark.integration

AUDIO_SHA = "0" * 64


@dataclass(frozen=True)
class World:
    """Personas and the ids of the rows seeded for them."""

    people: dict[str, Persona]
    rows: dict[str, list[Any]]  # table -> seeded primary keys
    a_conversation: uuid.UUID
    b_conversation: uuid.UUID
    a_turn: int
    prompt: uuid.UUID
    versions: list[uuid.UUID]
    experiment: uuid.UUID


KEYS = {
    "profiles": "id",
    "system_prompts": "id",
    "prompt_versions": "id",
    "prompt_experiments": "id",
    "experiment_variants": "id",
    "conversations": "id",
    "turns": "id",
    "analytics_events": "id",
    "eval_runs": "id",
    "eval_samples": "run_id",
    "exports": "id",
    "storage_objects": "id",
    "analytics_turn_latency": "turn_id",
    "client_heard_latency": "conversation_id",
    "connection_samples": "conversation_id",
    "analytics_connection": "conversation_id",
    "agent_workers": "id",
    "simulated_calls": "conversation_id",
    "annotation_tags": "id",
    "annotations": "id",
    "annotation_labels": "annotation_id",
}


def _service(conn: psycopg.Connection[Any], acting_for: uuid.UUID | None) -> None:
    claims = '{"role": "service_role"' + (f', "sub": "{acting_for}"' if acting_for else "") + "}"
    conn.execute("select set_config('request.jwt.claims', %s, false)", [claims])


@pytest.fixture(scope="module")
def world(app_db: str, jwt_secret: str) -> Iterator[World]:
    with psycopg.connect(app_db, autocommit=True) as conn:
        people = {
            "A": create_user(
                conn, name="a", role="user", jwt_secret=jwt_secret, display_name="Ada"
            ),
            "B": create_user(conn, name="b", role="user", jwt_secret=jwt_secret),
            "R": create_user(conn, name="r", role="researcher", jwt_secret=jwt_secret),
            "M": create_user(conn, name="m", role="admin", jwt_secret=jwt_secret),
        }
        people["anon"] = anon_persona(jwt_secret)
        a, b, r, m = (people[k].id for k in "ABRM")
        _service(conn, m)
        prompt = conn.execute(
            "insert into public.system_prompts (slug, title, created_by) values ('default', 'Default', %s) returning id",
            [m],
        ).fetchone()[0]  # type: ignore[index]
        versions = [
            conn.execute(
                "insert into public.prompt_versions (prompt_id, version, body, author_id) values (%s, 0, %s, %s) returning id",
                [prompt, body, m],
            ).fetchone()[0]  # type: ignore[index]
            for body in ("You are helpful.", "You are brief and helpful.")
        ]
        conn.execute(
            "update public.system_prompts set active_version_id = %s where id = %s",
            [versions[0], prompt],
        )
        experiment = conn.execute(
            "insert into public.prompt_experiments (prompt_id, name) values (%s, 'brevity') returning id",
            [prompt],
        ).fetchone()[0]  # type: ignore[index]
        variants = [
            conn.execute(
                "insert into public.experiment_variants (experiment_id, prompt_version_id, label, weight)"
                " values (%s, %s, %s, 1) returning id",
                [experiment, version, label],
            ).fetchone()[0]  # type: ignore[index]
            for version, label in zip(versions, ("A", "B"), strict=True)
        ]
        conversations = {}
        for owner in (a, b):
            conversations[owner] = conn.execute(
                "insert into public.conversations (owner_id, prompt_version_id, model_specs)"
                " values (%s, %s, %s) returning id",
                [owner, versions[0], Jsonb({"name": "cpu-small"})],
            ).fetchone()[0]  # type: ignore[index]
        turns = []
        for conversation, idx, role in (
            (conversations[a], 0, "user"),
            (conversations[a], 1, "agent"),
            (conversations[b], 0, "user"),
        ):
            turns.append(
                conn.execute(
                    """insert into public.turns (conversation_id, idx, role, text, started_at, ended_at, v2v_s)
                       values (%s, %s, %s, 'hello', now(), now(), 0.9) returning id""",
                    [conversation, idx, role],
                ).fetchone()[0]  # type: ignore[index]
            )
        conn.execute(
            "insert into public.client_heard_latency (conversation_id, agent_ordinal, v2v_audio_s) values (%s, 0, 1.2)",
            [conversations[a]],
        )
        conn.execute(
            "insert into public.connection_samples (conversation_id, rtt_ms, jitter_ms) values (%s, 40, 3)",
            [conversations[a]],
        )
        event = conn.execute(
            "insert into public.analytics_events (user_id, kind) values (%s, 'login') returning id",
            [a],
        ).fetchone()[0]  # type: ignore[index]
        run = conn.execute(
            """insert into public.eval_runs (task, task_version, dataset_id, spec, created_by)
               values ('asr', '1', 'demo', '{}', %s) returning id""",
            [r],
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("insert into public.eval_samples (run_id, sample_id) values (%s, 's1')", [run])
        export = conn.execute(
            "insert into public.exports (owner_id, format) values (%s, 'json') returning id", [a]
        ).fetchone()[0]  # type: ignore[index]
        obj = conn.execute(
            """insert into public.storage_objects (bucket, path, owner_id, content_type, size_bytes, sha256)
               values ('audio', %s, %s, 'audio/wav', 10, %s) returning id""",
            [f"{a}/turn-0.wav", a, AUDIO_SHA],
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            """insert into public.agent_workers (id, stack, agent_name, spec, host, state, max_rooms)
               values ('w1', 'cpu-small', 'voice-workbench-cpu-small', '{}', 'h', 'ready', 4)"""
        )
        conn.execute(
            """insert into public.simulated_calls (conversation_id, run_id, suite, scenario)
               values (%s, gen_random_uuid(), 'smoke', 'greeting')""",
            [conversations[a]],
        )
        tag = conn.execute(
            "insert into public.annotation_tags (name, created_by) values ('off-topic', %s) returning id",
            [m],
        ).fetchone()[0]  # type: ignore[index]
        _service(conn, r)
        annotation = conn.execute(
            """insert into public.annotations (conversation_id, turn_id, author_id, rating, note)
               values (%s, %s, %s, 2, 'answered another question') returning id""",
            [conversations[a], turns[1], r],
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "insert into public.annotation_labels (annotation_id, tag_id) values (%s, %s)",
            [annotation, tag],
        )
        rows = {
            "annotation_tags": [tag],
            "annotations": [annotation],
            "annotation_labels": [annotation],
            "simulated_calls": [conversations[a]],
            "agent_workers": ["w1"],
            "profiles": [a, b, r, m],
            "system_prompts": [prompt],
            "prompt_versions": versions,
            "prompt_experiments": [experiment],
            "experiment_variants": variants,
            "conversations": list(conversations.values()),
            "turns": turns,
            "analytics_events": [event],
            "eval_runs": [run],
            "eval_samples": [run],
            "exports": [export],
            "storage_objects": [obj],
            "analytics_turn_latency": [turns[1]],
            "client_heard_latency": [conversations[a]],
            "connection_samples": [conversations[a]],
            "analytics_connection": [conversations[a]],
        }
        yield World(
            people, rows, conversations[a], conversations[b], turns[0], prompt, versions, experiment
        )


DENIED = "denied"
# Seeded rows each persona can see, per table (DENIED: the role has no select grant at all).
VISIBLE = {
    #                         anon    A  B  R  M
    "profiles": (DENIED, 1, 1, 1, 4),
    "system_prompts": (DENIED, 0, 0, 1, 1),
    "prompt_versions": (DENIED, 0, 0, 2, 2),
    "prompt_experiments": (DENIED, 0, 0, 1, 1),
    "experiment_variants": (DENIED, 0, 0, 2, 2),
    "conversations": (DENIED, 1, 1, 2, 2),
    "turns": (DENIED, 2, 1, 3, 3),
    "analytics_events": (DENIED, 1, 0, 0, 1),  # a sign-in: the admins' (audit trail)
    "eval_runs": (DENIED, 0, 0, 1, 1),
    "eval_samples": (DENIED, 0, 0, 1, 1),
    "exports": (DENIED, 1, 0, 0, 1),
    "storage_objects": (DENIED, 1, 0, 1, 1),
    "analytics_turn_latency": (DENIED, 1, 0, 1, 1),
    "client_heard_latency": (DENIED, 1, 0, 1, 1),
    "connection_samples": (DENIED, 1, 0, 1, 1),
    "analytics_connection": (DENIED, 1, 0, 1, 1),
    "agent_workers": (DENIED, 1, 1, 1, 1),  # which stacks can serve: every signed-in user
    "simulated_calls": (DENIED, 0, 0, 1, 1),  # simulations are researchers' work
    "annotation_tags": (DENIED, 0, 0, 1, 1),  # the study's judgement, not the participant's
    "annotations": (DENIED, 0, 0, 1, 1),
    "annotation_labels": (DENIED, 0, 0, 1, 1),
}
PERSONAS = ("anon", "A", "B", "R", "M")


@pytest.mark.parametrize(
    ("table", "persona", "expected"),
    [(table, p, counts[i]) for table, counts in VISIBLE.items() for i, p in enumerate(PERSONAS)],
)
async def test_select_visibility(
    app_db: str, world: World, table: str, persona: str, expected: object
) -> None:
    query = f"select count(*) from public.{table} where {KEYS[table]} = any(%s)"  # noqa: S608 - names from KEYS
    if expected == DENIED:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await query_as(app_db, world.people[persona], query, [world.rows[table]])
    else:
        assert await query_as(app_db, world.people[persona], query, [world.rows[table]]) == [
            (expected,)
        ]


def test_every_app_table_has_rls_and_is_in_the_matrix(app_db: str) -> None:
    with psycopg.connect(app_db) as conn:
        tables = conn.execute(
            "select relname, relrowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'public' and c.relkind = 'r'"
        ).fetchall()
    assert tables, "no app tables"
    assert [name for name, rls in tables if not rls] == []
    assert {name for name, _ in tables} <= set(VISIBLE)


# -- writes -----------------------------------------------------------------


async def test_user_edits_own_profile_but_not_others(app_db: str, world: World) -> None:
    a, b = world.people["A"], world.people["B"]
    rows = await query_as(
        app_db,
        a,
        "update public.profiles set display_name = 'Ada L' where id = %s returning id",
        [a.id],
    )
    assert rows == [(a.id,)]
    assert (
        await query_as(
            app_db,
            a,
            "update public.profiles set display_name = 'x' where id = %s returning id",
            [b.id],
        )
        == []
    )


@pytest.mark.parametrize("persona", ["A", "R"])
async def test_nobody_but_admins_changes_roles(app_db: str, world: World, persona: str) -> None:
    p = world.people[persona]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await query_as(app_db, p, "update public.profiles set role = 'admin' where id = %s", [p.id])
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only an admin"):
        await query_as(app_db, p, "select public.set_user_role(%s, 'admin')", [p.id])
    assert await query_as(app_db, p, "select private.current_app_role()::text") != [("admin",)]


async def test_admin_changes_roles_but_keeps_one_admin(app_db: str, world: World) -> None:
    m, b = world.people["M"], world.people["B"]
    await query_as(app_db, m, "select public.set_user_role(%s, 'researcher')", [b.id])
    assert await query_as(app_db, b, "select private.current_app_role()::text") == [("researcher",)]
    await query_as(app_db, m, "select public.set_user_role(%s, 'user')", [b.id])
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="last admin"):
        await query_as(app_db, m, "select public.set_user_role(%s, 'user')", [m.id])


@pytest.mark.parametrize("persona", ["A", "R", "M"])
async def test_no_user_records_conversations_or_turns_not_even_their_own(
    app_db: str, world: World, persona: str
) -> None:
    """What a conversation holds is what the agent heard and said: only the service writes it."""
    p = world.people[persona]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await query_as(app_db, p, "insert into public.conversations (owner_id) values (%s)", [p.id])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await query_as(
            app_db,
            p,
            """insert into public.turns (conversation_id, idx, role, text, started_at, ended_at)
               values (%s, 99, 'user', 'made up', now(), now())""",
            [world.a_conversation],
        )


async def test_prompt_versions_are_immutable_even_for_admins(app_db: str, world: World) -> None:
    m = world.people["M"]
    statements = (
        "update public.prompt_versions set body = 'changed' where id = %s returning id",
        "delete from public.prompt_versions where id = %s returning id",
    )
    # No policy lets an admin's session change a version...
    for statement in statements:
        assert await query_as(app_db, m, statement, [world.versions[0]]) == []
    # ...and even the service role, which bypasses RLS, is stopped by the trigger.
    with psycopg.connect(app_db, autocommit=True) as conn:
        _service(conn, m.id)
        conn.execute("set role service_role")
        for statement in statements:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="immutable"):
                conn.execute(statement, [world.versions[0]])
    body = await query_as(
        app_db, m, "select body from public.prompt_versions where id = %s", [world.versions[0]]
    )
    assert body == [("You are helpful.",)]


@pytest.mark.parametrize("persona", ["A", "R"])
async def test_only_admins_write_prompts(app_db: str, world: World, persona: str) -> None:
    p = world.people[persona]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await query_as(
            app_db,
            p,
            "insert into public.prompt_versions (prompt_id, version, body) values (%s, 0, 'mine')",
            [world.prompt],
        )
    assert (
        await query_as(
            app_db,
            p,
            "update public.system_prompts set active_version_id = %s where id = %s returning id",
            [world.versions[1], world.prompt],
        )
        == []
    )


async def test_user_cannot_touch_another_users_conversation(app_db: str, world: World) -> None:
    a, b = world.people["A"], world.people["B"]
    # No user inserts conversations or turns at all (the test below); someone else's even less.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await query_as(
            app_db,
            a,
            "insert into public.turns (conversation_id, idx, role, text, started_at, ended_at)"
            " values (%s, 9, 'user', 'injected', now(), now())",
            [world.b_conversation],
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await query_as(app_db, a, "insert into public.conversations (owner_id) values (%s)", [b.id])
    assert (
        await query_as(
            app_db,
            a,
            "delete from public.conversations where id = %s returning id",
            [world.b_conversation],
        )
        == []
    )
    assert (
        await query_as(
            app_db,
            a,
            "select text from public.turns where conversation_id = %s",
            [world.b_conversation],
        )
        == []
    )


async def test_users_correct_transcripts_but_not_what_was_said(app_db: str, world: World) -> None:
    a = world.people["A"]
    rows = await query_as(
        app_db,
        a,
        "update public.turns set reference_text = 'hello there' where id = %s returning id",
        [world.a_turn],
    )
    assert rows == [(world.a_turn,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await query_as(
            app_db, a, "update public.turns set text = 'rewritten' where id = %s", [world.a_turn]
        )


async def test_storage_keys_are_namespaced_by_owner(app_db: str, world: World) -> None:
    a, b = world.people["A"], world.people["B"]
    insert = (
        "insert into public.storage_objects (bucket, path, owner_id, content_type, size_bytes, sha256)"
        " values ('audio', %s, %s, 'audio/wav', 10, %s)"
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        await query_as(app_db, a, insert, [f"{b.id}/x.wav", b.id, AUDIO_SHA])
    with pytest.raises(psycopg.errors.CheckViolation):
        await query_as(app_db, a, insert, [f"{b.id}/x.wav", a.id, AUDIO_SHA])
    with pytest.raises(psycopg.errors.CheckViolation):
        await query_as(app_db, a, insert, [f"{a.id}/../{b.id}/x.wav", a.id, AUDIO_SHA])


async def test_eval_runs_are_for_researchers(app_db: str, world: World) -> None:
    insert = "insert into public.eval_runs (task, task_version, dataset_id, spec) values ('asr', '1', 'd', '{}') returning id"
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await query_as(app_db, world.people["A"], insert)
    assert len(await query_as(app_db, world.people["R"], insert)) == 1


async def test_events_are_recorded_only_in_ones_own_name(app_db: str, world: World) -> None:
    a, b = world.people["A"], world.people["B"]
    await query_as(app_db, a, "insert into public.analytics_events (kind) values ('page_view')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await query_as(
            app_db,
            a,
            "insert into public.analytics_events (user_id, kind) values (%s, 'login')",
            [b.id],
        )


# -- privileges beyond RLS ----------------------------------------------------


def test_no_api_role_can_truncate_reference_trigger_or_bump_a_sequence(app_db: str) -> None:
    """RLS does not govern TRUNCATE, REFERENCES or TRIGGER: no public object grants them to API roles."""
    with psycopg.connect(app_db) as conn:
        leaks = conn.execute(
            """select c.relname, r.role, p.privilege
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
               cross join (values ('anon'), ('authenticated')) as r (role)
               cross join (values ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) as p (privilege)
               where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'f')
                 and has_table_privilege(r.role, c.oid, p.privilege)
               union all
               select c.relname, r.role, 'UPDATE (sequence)'
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
               cross join (values ('anon'), ('authenticated')) as r (role)
               where n.nspname = 'public' and c.relkind = 'S'
                 and has_sequence_privilege(r.role, c.oid, 'UPDATE')"""
        ).fetchall()
        tables = conn.execute(
            "select count(*) from pg_tables where schemaname = 'public'"
        ).fetchone()
    assert tables is not None
    assert tables[0] > 5
    assert leaks == []


async def test_a_signed_in_user_cannot_empty_a_shared_table(app_db: str, world: World) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await query_as(app_db, world.people["R"], "truncate public.eval_runs cascade")
    with psycopg.connect(app_db) as conn:
        left = conn.execute("select count(*) from public.eval_runs").fetchone()
    assert left is not None
    assert left[0] >= 1


def test_tables_made_later_grant_api_roles_no_truncate(app_db: str) -> None:
    """The default privileges too: a table a future migration creates is covered from the start."""
    with psycopg.connect(app_db, autocommit=True) as conn:
        conn.execute("create table public.later_table (id int)")
        try:
            granted = conn.execute(
                "select has_table_privilege('authenticated', 'public.later_table', 'TRUNCATE'),"
                " has_table_privilege('authenticated', 'public.later_table', 'SELECT')"
            ).fetchone()
        finally:
            conn.execute("drop table public.later_table")
    assert granted == (False, True)


# The functions of `public` that run as their owner on purpose: the API a signed-in user
# calls (each checks the caller's role or scope itself, tested above and in test_exports).
PUBLIC_DEFINER_API = {
    "activity_daily_rows",
    "conversations_saying",
    "latency_daily_rows",
    "set_user_role",
}


def test_helpers_that_read_past_rls_are_out_of_the_exposed_schema(app_db: str) -> None:
    """A hosted project serves every `public` function through its API: no helper there."""
    with psycopg.connect(app_db, autocommit=True) as conn:
        definers = {
            name
            for (name,) in conn.execute(
                "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
                " where n.nspname = 'public' and p.prosecdef"
            ).fetchall()
        }
    assert definers == PUBLIC_DEFINER_API


def test_a_signed_in_user_runs_no_private_function_but_the_policies_two(app_db: str) -> None:
    """`private.user_by_email` and the rest are the service's; policies need two helpers.

    Every function the migrations leave in `private` is checked, so one a later
    migration adds without revoking it from PUBLIC fails here."""
    with psycopg.connect(app_db, autocommit=True) as conn:
        callable_by = {
            role: {
                name
                for (name,) in conn.execute(
                    "select p.proname from pg_proc p"
                    " join pg_namespace n on n.oid = p.pronamespace"
                    " where n.nspname = 'private'"
                    " and has_function_privilege(%s, p.oid, 'EXECUTE')",
                    [role],
                ).fetchall()
            }
            for role in ("anon", "authenticated", "service_role")
        }
    assert callable_by["anon"] == set()
    assert callable_by["authenticated"] == {"current_app_role", "owns_conversation"}
    assert {"user_by_email", "login_begin", "note_stale_simulated"} <= callable_by["service_role"]


async def test_a_claim_saying_service_role_does_not_change_roles(app_db: str, world: World) -> None:
    """set_user_role trusts the session's database role, never a `role` claim a user could forge."""
    a = world.people["A"]
    async with await psycopg.AsyncConnection.connect(app_db) as conn:
        await conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            [json.dumps({"sub": str(a.id), "role": "service_role"})],
        )
        await conn.execute("set local role authenticated")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only an admin"):
            await conn.execute("select public.set_user_role(%s, 'admin')", [a.id])


async def test_two_admins_demoting_each_other_at_once_leave_one(app_db: str, world: World) -> None:
    m = world.people["M"]
    with psycopg.connect(app_db, autocommit=True) as conn:
        second = create_user(conn, name="second-admin", role="admin", jwt_secret="x" * 40)
    first_tx = await psycopg.AsyncConnection.connect(app_db)
    second_tx = await psycopg.AsyncConnection.connect(app_db)
    try:
        for conn, me in ((first_tx, m), (second_tx, second)):
            await conn.execute(
                "select set_config('request.jwt.claims', %s, true)",
                [json.dumps({"sub": str(me.id), "role": "authenticated"})],
            )
            await conn.execute("set local role authenticated")
        await first_tx.execute("select public.set_user_role(%s, 'user')", [second.id])
        # The second demotion waits for the first to commit, then sees one admin left.
        racing = asyncio.create_task(
            second_tx.execute("select public.set_user_role(%s, 'user')", [m.id])
        )
        await asyncio.sleep(0.5)
        assert not racing.done(), "the second role change did not wait for the first"
        await first_tx.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="last admin"):
            await racing
    finally:
        await first_tx.close()
        await second_tx.close()
    with psycopg.connect(app_db) as conn:
        admins = conn.execute(
            "select count(*) from public.profiles where role = 'admin'"
        ).fetchone()
    assert admins == (1,)


async def test_connection_samples_only_for_ones_own_conversation(app_db: str, world: World) -> None:
    insert = "insert into public.connection_samples (conversation_id, rtt_ms) values (%s, 50)"
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await query_as(app_db, world.people["B"], insert, [world.a_conversation])
    await query_as(app_db, world.people["A"], insert, [world.a_conversation])


async def test_annotations_are_researchers_own_and_stamped_by_the_database(
    app_db: str, world: World
) -> None:
    a, r, m = world.people["A"], world.people["R"], world.people["M"]
    # A plain user annotates nothing, not even their own conversation.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await query_as(
            app_db,
            a,
            "insert into public.annotations (conversation_id, rating) values (%s, 5)",
            [world.a_conversation],
        )
    # A researcher cannot write in another's name: the database stamps the author.
    stamped = await query_as(
        app_db,
        r,
        """insert into public.annotations (conversation_id, author_id, rating) values (%s, %s, 4)
           returning author_id""",
        [world.b_conversation, m.id],
    )
    assert stamped == [(r.id,)]
    # Nor edit the admin's annotation, nor move their own to another conversation.
    admins = await query_as(
        app_db,
        m,
        "insert into public.annotations (conversation_id, rating) values (%s, 1) returning id",
        [world.b_conversation],
    )
    assert (
        await query_as(
            app_db,
            r,
            "update public.annotations set rating = 5 where id = %s returning id",
            [admins[0][0]],
        )
        == []
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await query_as(
            app_db,
            r,
            "update public.annotations set conversation_id = %s where author_id = %s",
            [world.a_conversation, r.id],
        )
    # A turn of another conversation is refused.
    with pytest.raises(psycopg.errors.CheckViolation, match="is not a turn of conversation"):
        await query_as(
            app_db,
            r,
            "insert into public.annotations (conversation_id, turn_id) values (%s, %s)",
            [world.b_conversation, world.a_turn],
        )
    # Only admins grow the vocabulary.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await query_as(app_db, r, "insert into public.annotation_tags (name) values ('mine')")
