"""The audit trail: Postgres records who did what as it happens, and shows it only to whom it may.

Each action is done the way the app does it (as the signed-in user under RLS, or
as the service for what the agent and the web app's own pool write); the events
come from the database's triggers, never from application code.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.personas import Persona, create_user, query_as
from workbench.db.connection import rls_session
from workbench.db.repositories import AnalyticsRepo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def people(app_db: str, jwt_secret: str) -> Iterator[dict[str, Persona]]:
    with psycopg.connect(app_db, autocommit=True) as conn:
        yield {
            "A": create_user(
                conn, name="a", role="user", jwt_secret=jwt_secret, display_name="Ada"
            ),
            "R": create_user(conn, name="r", role="researcher", jwt_secret=jwt_secret),
            "M": create_user(
                conn, name="m", role="admin", jwt_secret=jwt_secret, display_name="Mo Admin"
            ),
        }


def _events(dsn: str, since: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "select user_id, kind, payload from public.analytics_events where id > %s order by id",
            [since],
        ).fetchall()


def _last_id(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("select coalesce(max(id), 0) from public.analytics_events").fetchone()
    assert row is not None
    return int(row[0])


async def test_every_audited_action_is_recorded_with_who_did_it(
    app_db: str, people: dict[str, Persona]
) -> None:
    a, m = people["A"], people["M"]
    start = _last_id(app_db)
    # A signs in and out (the web app's own pool writes the session as the service).
    with psycopg.connect(app_db, autocommit=True) as conn:
        conn.execute("set role service_role")
        session = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
        conn.execute(
            """insert into private.web_sessions (id_hash, user_id, access_token, refresh_token, access_expires_at)
               values (%s, %s, 'x', 'y', now() + interval '1 hour')""",
            [session, a.id],
        )
        conn.execute("delete from private.web_sessions where id_hash = %s", [session])
        # The agent records A's conversation as the service.
        conversation = conn.execute(
            "insert into public.conversations (owner_id, model_specs) values (%s, %s) returning id",
            [a.id, Jsonb({"name": "cpu-small"})],
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "update public.conversations set status = 'completed', ended_at = now() where id = %s",
            [conversation],
        )
    # A asks for an export; the admin activates a prompt version, runs an experiment
    # and promotes A.
    await query_as(app_db, a, "insert into public.exports (format) values ('csv')")
    prompt = (
        await query_as(
            app_db,
            m,
            "insert into public.system_prompts (slug, title) values (%s, 'Audit') returning id",
            [f"audit-{uuid.uuid4().hex[:8]}"],
        )
    )[0][0]
    version = (
        await query_as(
            app_db,
            m,
            "insert into public.prompt_versions (prompt_id, version, body) values (%s, 0, 'Hi.') returning id",
            [prompt],
        )
    )[0][0]
    await query_as(
        app_db,
        m,
        "update public.system_prompts set active_version_id = %s where id = %s",
        [version, prompt],
    )
    experiment = (
        await query_as(
            app_db,
            m,
            "insert into public.prompt_experiments (prompt_id, name) values (%s, 'arms') returning id",
            [prompt],
        )
    )[0][0]
    for status, stamp in (("running", "started_at"), ("stopped", "stopped_at")):
        await query_as(
            app_db,
            m,
            f"update public.prompt_experiments set status = %s, {stamp} = now() where id = %s",  # noqa: S608
            [status, experiment],
        )
    await query_as(app_db, m, "select public.set_user_role(%s, 'researcher')", [a.id])

    recorded = [(who, kind, payload) for who, kind, payload in _events(app_db, start)]
    by_kind = {kind: (who, payload) for who, kind, payload in recorded}
    assert [kind for _, kind, _ in recorded] == [
        "login",
        "logout",
        "conversation_started",
        "conversation_ended",
        "export_requested",
        "prompt_activated",
        "experiment_started",
        "experiment_stopped",
        "role_changed",
    ]
    assert by_kind["logout"] == (a.id, {"reason": "signed out"})
    assert by_kind["conversation_started"][0] == a.id
    assert by_kind["conversation_started"][1]["model_stack"] == "cpu-small"
    assert by_kind["conversation_ended"][1]["status"] == "completed"
    assert by_kind["export_requested"][0] == a.id
    assert by_kind["export_requested"][1]["format"] == "csv"
    assert by_kind["prompt_activated"][0] == m.id
    assert by_kind["prompt_activated"][1]["version"] == 1
    assert by_kind["experiment_stopped"][1]["experiment"] == "arms"
    who, change = by_kind["role_changed"]
    assert who == m.id
    assert change == {
        "subject": str(a.id),
        "subject_name": "Ada",
        "from": "user",
        "to": "researcher",
    }
    await query_as(app_db, m, "select public.set_user_role(%s, 'user')", [a.id])


async def test_events_cannot_be_forged_or_changed(app_db: str, people: dict[str, Persona]) -> None:
    a = people["A"]
    for kind in ("login", "role_changed", "conversation_started"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await query_as(
                app_db, a, "insert into public.analytics_events (kind) values (%s)", [kind]
            )
    await query_as(app_db, a, "insert into public.analytics_events (kind) values ('page_view')")
    for statement in (
        "update public.analytics_events set kind = 'page_view'",
        "delete from public.analytics_events",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await query_as(app_db, people["M"], statement)


async def test_sign_ins_and_role_changes_are_for_admins_usage_for_researchers(
    app_db: str, people: dict[str, Persona]
) -> None:
    a, r, m = people["A"], people["R"], people["M"]
    with psycopg.connect(app_db, autocommit=True) as conn:
        conn.execute("set role service_role")
        conn.execute(
            """insert into private.web_sessions (id_hash, user_id, access_token, refresh_token, access_expires_at)
               values (%s, %s, 'x', 'y', now())""",
            [hashlib.sha256(uuid.uuid4().bytes).hexdigest(), a.id],
        )
        conn.execute(
            "insert into public.conversations (owner_id) values (%s)",
            [a.id],
        )
    query = "select distinct kind from public.analytics_events where user_id = %s"
    researcher_sees = {k for (k,) in await query_as(app_db, r, query, [a.id])}
    assert "conversation_started" in researcher_sees
    assert "login" not in researcher_sees
    assert "login" in {k for (k,) in await query_as(app_db, m, query, [a.id])}
    assert "login" in {k for (k,) in await query_as(app_db, a, query, [a.id])}  # one's own

    async with (
        await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn,
        rls_session(conn, m.claims),
    ):
        repo = AnalyticsRepo(conn)
        logins = await repo.audit_events(kinds=["login"], who="ada")
        assert logins
        assert {(e.who, e.kind) for e in logins} == {("Ada", "login")}
        assert await repo.audit_events(kinds=["login"], who="nobody-by-that-name") == []
