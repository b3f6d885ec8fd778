"""Postgres with Supabase's role model: RLS enforced by the database under verified claims."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from stack.services import LocalStack
from workbench.auth.tokens import AccessClaims
from workbench.config import Settings
from workbench.db.connection import (
    ClaimsRoleError,
    PrivilegedConnectionError,
    database_url,
    open_pool,
    refuse_privileged,
    rls_session,
    service_session,
)
from workbench.db.migrations import MigrationError, apply_migrations

pytestmark = pytest.mark.integration

NOTES_TABLE = """
create table public.notes (
  id bigint generated always as identity primary key,
  owner uuid not null default auth.uid(),
  body text not null
);
alter table public.notes enable row level security;
create policy "owners read their notes" on public.notes
  for select to authenticated using (owner = (select auth.uid()));
create policy "owners write their notes" on public.notes
  for insert to authenticated with check (owner = (select auth.uid()));
"""


def test_supabase_roles_exist_with_their_powers(admin_dsn: str) -> None:
    with psycopg.connect(admin_dsn) as conn:
        rows = conn.execute(
            "select rolname, rolcanlogin, rolbypassrls from pg_roles where rolname = any(%s)",
            [["anon", "authenticated", "service_role", "authenticator", "supabase_auth_admin"]],
        ).fetchall()
        roles = {name: (login, bypass) for name, login, bypass in rows}
        assert roles["anon"] == (False, False)
        assert roles["authenticated"] == (False, False)
        assert roles["service_role"] == (False, True)
        assert roles["authenticator"] == (True, False)
        assert roles["supabase_auth_admin"][0] is True
        schemas = {row[0] for row in conn.execute("select nspname from pg_namespace").fetchall()}
        assert {"auth", "extensions", "supabase_migrations"} <= schemas


def test_the_app_connects_as_authenticator_with_its_own_password(
    admin_dsn: str, settings: Settings
) -> None:
    """The app's URL is `authenticator`'s: no rights of its own, only `set role` to the API roles."""
    app_dsn = database_url(settings)
    assert app_dsn.startswith("postgresql://authenticator:")
    # Each login role has its own password; the superuser's opens no other role.
    superuser_password = admin_dsn.split(":")[2].split("@")[0]
    for role in ("authenticator", "supabase_auth_admin"):
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(
                admin_dsn.replace(
                    f"postgres:{superuser_password}@", f"{role}:{superuser_password}@"
                )
            )
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        for role in ("anon", "authenticated", "service_role"):
            conn.execute(psycopg.sql.SQL("set role {}").format(psycopg.sql.Identifier(role)))
            conn.execute("reset role")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("set role postgres")
        # As itself (NOINHERIT) it reads nothing: not Auth's users, not the server's
        # tables, not the app's rows.
        for query in (
            "select 1 from auth.users",
            "select 1 from private.web_sessions",
            "select 1 from public.turns",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(query)
    refuse_privileged(app_dsn)
    with pytest.raises(PrivilegedConnectionError, match="bypasses row-level security"):
        refuse_privileged(admin_dsn)


async def test_rows_are_visible_only_to_their_owner(scratch_db: str, sign_user_claims) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(scratch_db, autocommit=True) as admin:
        admin.execute(NOTES_TABLE)
    alice: AccessClaims = sign_user_claims(email="alice@example.org")
    bob: AccessClaims = sign_user_claims(email="bob@example.org")
    anon = AccessClaims(role="anon", exp=2**33)

    async with await psycopg.AsyncConnection.connect(scratch_db, autocommit=True) as conn:
        async with rls_session(conn, alice):
            await conn.execute("insert into public.notes (body) values ('alice 1'), ('alice 2')")
        async with rls_session(conn, bob):
            await conn.execute("insert into public.notes (body) values ('bob 1')")

        async with rls_session(conn, alice):
            cur = await conn.execute("select body, owner::text from public.notes order by id")
            rows = await cur.fetchall()
        assert rows == [("alice 1", alice.sub), ("alice 2", alice.sub)]

        async with rls_session(conn, anon):
            cur = await conn.execute("select count(*) from public.notes")
            assert (await cur.fetchone()) == (0,)

        # Writing a row in another user's name is refused by the policy, and
        # the failed transaction leaves nothing behind.
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            async with rls_session(conn, alice):
                await conn.execute(
                    "insert into public.notes (owner, body) values (%s, 'forged')", [bob.sub]
                )

        async with service_session(conn, acting_for=alice.sub):
            cur = await conn.execute(
                "select count(*), count(*) filter (where body = 'forged') from public.notes"
            )
            assert (await cur.fetchone()) == (3, 0)

        # The session settings do not outlive the transaction.
        cur = await conn.execute("select current_user, current_setting('request.jwt.claims', true)")
        user, claims = await cur.fetchone()  # type: ignore[misc]
        assert user == "postgres"
        assert claims in (None, "")


async def test_user_claims_cannot_ask_for_service_role(scratch_db: str) -> None:
    async with await psycopg.AsyncConnection.connect(scratch_db, autocommit=True) as conn:
        with pytest.raises(ClaimsRoleError, match="service_role"):
            async with rls_session(conn, AccessClaims(role="service_role", exp=2**33)):
                pass


def _write(directory: Path, name: str, sql: str) -> Path:
    path = directory / name
    path.write_text(sql)
    return path


def test_migrations_apply_once_and_catch_edits(scratch_db: str, tmp_path: Path) -> None:
    first = _write(
        tmp_path, "20260101000000_create_things.sql", "create table public.things (id int);"
    )
    _write(
        tmp_path, "20260102000000_add_name.sql", "alter table public.things add column name text;"
    )
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        assert [m.name for m in apply_migrations(conn, tmp_path)] == ["create_things", "add_name"]
        assert apply_migrations(conn, tmp_path) == []
        first.write_text("create table public.things (id bigint);")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            apply_migrations(conn, tmp_path)


def test_failed_migration_is_rolled_back_whole(scratch_db: str, tmp_path: Path) -> None:
    _write(
        tmp_path,
        "20260101000000_half_broken.sql",
        "create table public.half (id int);\ninsert into public.missing values (1);",
    )
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        with pytest.raises(MigrationError, match=r"half_broken\.sql failed and was rolled back"):
            apply_migrations(conn, tmp_path)
        assert conn.execute("select to_regclass('public.half')").fetchone() == (None,)
        applied = conn.execute(
            "select count(*) from supabase_migrations.schema_migrations"
        ).fetchone()
        assert applied == (0,)


async def test_the_pool_survives_a_postgres_restart(stack: LocalStack, settings: Settings) -> None:
    """Pooled connections die with the server; the next request must get a live one, not a 500."""
    async with open_pool(settings, min_size=2, max_size=2) as pool:
        async with pool.connection() as conn:
            await conn.execute("select 1")
        stack.postgres.stop()
        stack.postgres.start()
        async with pool.connection() as conn:
            cur = await conn.execute("select 1")
            assert await cur.fetchone() == (1,)
            cur = await conn.execute("show statement_timeout")
            assert await cur.fetchone() == ("30s",)
