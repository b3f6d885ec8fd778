"""Connections: a pool for service code, and RLS sessions that act as the caller.

User-facing queries run the way PostgREST runs them, so row-level security
is enforced by Postgres, not by Python:

    begin;
    select set_config('request.jwt.claims', '<verified claims json>', true);
    set local role authenticated;   -- or anon
    ...
    commit;
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

from workbench.auth.tokens import AccessClaims
from workbench.config import Settings

# Roles a verified end-user token may act as. `service_role` bypasses RLS and
# is reachable only through `service_session`, never from a user's claims.
USER_ROLES = frozenset({"anon", "authenticated"})


class ClaimsRoleError(PermissionError):
    """The token asks for a role a user session may not take."""


def database_url(settings: Settings) -> str:
    """The application's connection string, `authenticator` locally (raises if there is none yet)."""
    if settings.database_url is None:
        raise ValueError("no DATABASE_URL: run `./dev up` (local) or set DATABASE_URL (hosted)")
    return settings.database_url.get_secret_value()


def admin_database_url(settings: Settings) -> str:
    """The database owner's connection string: migrations and stack housekeeping only."""
    if settings.database_admin_url is None:
        raise ValueError(
            "no DATABASE_ADMIN_URL: run `./dev up` (local) or set DATABASE_ADMIN_URL (hosted, "
            "for migrations)"
        )
    return settings.database_admin_url.get_secret_value()


class PrivilegedConnectionError(PermissionError):
    """A long-running service was given a connection that RLS cannot hold back."""


def refuse_privileged(dsn: str) -> None:
    """Refuse a connection string whose role is a superuser or bypasses RLS.

    The web app and the agent connect as `authenticator` and reach more only by
    `set local role`; with the owner's connection one injection would read
    everything, whatever the policies say. Called once as each service starts.
    """
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        found = conn.execute(
            "select current_user::text, rolsuper or rolbypassrls from pg_roles "
            "where rolname = current_user"
        ).fetchone()
    if found is not None and found[1]:
        raise PrivilegedConnectionError(
            f"DATABASE_URL connects as {found[0]!r}, which bypasses row-level security; "
            "connect as `authenticator` (`./dev up` sets this locally) and keep the owner's URL "
            "in DATABASE_ADMIN_URL for migrations"
        )


# A query that hangs (a lock, a runaway plan) fails instead of holding a pooled
# connection, and with it sign-in, forever.
STATEMENT_TIMEOUT_MS = 30_000
LOCK_TIMEOUT_MS = 5_000


def open_pool(
    settings: Settings,
    *,
    min_size: int = 1,
    max_size: int = 10,
    name: str = "voice-workbench",
    role: str | None = None,
) -> AsyncConnectionPool:
    """An (unopened) async pool; use `async with open_pool(s) as pool:`.

    `role` (e.g. `service_role`) is taken for each connection's whole life, for a
    pool that serves only the server's own bookkeeping; without it a connection has
    only the login role's rights (`authenticator`: none) until an `rls_session`.

    Each connection is checked as it leaves the pool: after a Postgres restart the
    pooled ones are dead, and a request would otherwise get AdminShutdown (a 500)
    instead of a fresh connection. The check is one round trip on loopback.
    """

    async def take_role(conn: AsyncConnection[Any]) -> None:
        if role is not None:
            await conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))

    return AsyncConnectionPool(
        database_url(settings),
        configure=take_role,
        min_size=min_size,
        max_size=max_size,
        open=False,
        check=AsyncConnectionPool.check_connection,
        kwargs={
            "autocommit": True,
            # Named, so pg_stat_activity tells which service holds which connection.
            "application_name": name,
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}",
        },
    )


# Where service code gets a connection for one piece of work: `async with connect() as conn`.
Connect = Callable[[], AbstractAsyncContextManager[AsyncConnection[Any]]]


def fresh_connections(dsn: str, *, name: str, connect_timeout_s: int = 3) -> Connect:
    """A new autocommit connection each time, closed after: for work that runs now and then,
    each time on an event loop of its own (a pool belongs to one loop). A short connect
    timeout, so an outage fails fast instead of stalling the caller."""

    @asynccontextmanager
    async def connect() -> AsyncIterator[AsyncConnection[Any]]:
        conn = await AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=connect_timeout_s, application_name=name
        )
        try:
            yield conn
        finally:
            await conn.close()

    return connect


def pooled_connections(pool: AsyncConnectionPool, *, timeout_s: float = 3.0) -> Connect:
    """Connections from an open pool; waiting longer than `timeout_s` raises PoolTimeout
    (an OperationalError, as a failed connect would)."""
    return lambda: pool.connection(timeout=timeout_s)


def _require_idle(conn: AsyncConnection[Any]) -> None:
    # `set local role` lasts until the *outer* transaction ends: nested in a
    # caller's transaction, the identity would leak past the block.
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise RuntimeError("an identity session must start its own transaction, not nest in one")


@asynccontextmanager
async def rls_session(
    conn: AsyncConnection[Any], claims: AccessClaims
) -> AsyncIterator[AsyncConnection[Any]]:
    """A transaction acting as the holder of `claims`, under RLS.

    `claims` must come from `TokenVerifier.verify`; the role is taken from
    them and must be `anon` or `authenticated`.
    """
    if claims.role not in USER_ROLES:
        raise ClaimsRoleError(f"a user session cannot act as role {claims.role!r}")
    _require_idle(conn)
    async with conn.transaction():
        await conn.execute(
            "select set_config('request.jwt.claims', %s, true)",
            [json.dumps(claims.as_json_claims())],
        )
        await conn.execute(sql.SQL("set local role {}").format(sql.Identifier(claims.role)))
        yield conn


@asynccontextmanager
async def service_session(
    conn: AsyncConnection[Any], *, acting_for: UUID | str | None = None
) -> AsyncIterator[AsyncConnection[Any]]:
    """A transaction as `service_role` (bypasses RLS), explicit about whom it acts for.

    `acting_for` (a user id) is exposed to SQL as `auth.uid()`, so triggers and
    audit columns see the user the service works on behalf of.
    """
    claims: dict[str, Any] = {"role": "service_role"}
    if acting_for is not None:
        claims["sub"] = str(acting_for)
    _require_idle(conn)
    async with conn.transaction():
        await conn.execute(
            "select set_config('request.jwt.claims', %s, true)", [json.dumps(claims)]
        )
        await conn.execute("set local role service_role")
        yield conn


async def claims_for_user(
    conn: AsyncConnection[Any], email: str, *, ttl_s: int = 3600
) -> AccessClaims:
    """Claims acting as the user with `email`, for trusted tools that hold the database URL.

    The evals and dataset CLIs run next to the database, not behind Supabase
    Auth; they still act as a named user under RLS (less power than the
    connection has), so what they read and write is what that user may.
    """
    # auth.users belongs to Supabase Auth; the lookup is a service_role-only function.
    async with service_session(conn):
        cur = await conn.execute("select id::text, email from private.user_by_email(%s)", [email])
        found = await cur.fetchone()
    if found is None:
        raise LookupError(f"no user with email {email!r}")
    now = int(time.time())
    return AccessClaims(
        role="authenticated",
        sub=found[0],
        email=found[1],
        iat=now,
        exp=now + ttl_s,
        aud="authenticated",
    )
