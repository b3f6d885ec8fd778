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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

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
    """The configured connection string (raises if there is none yet)."""
    if settings.database_url is None:
        raise ValueError("no DATABASE_URL: run `./dev up` (local) or set DATABASE_URL (hosted)")
    return settings.database_url.get_secret_value()


# A query that hangs (a lock, a runaway plan) fails instead of holding a pooled
# connection, and with it sign-in, forever.
STATEMENT_TIMEOUT_MS = 30_000
LOCK_TIMEOUT_MS = 5_000


def open_pool(settings: Settings, *, min_size: int = 1, max_size: int = 10) -> AsyncConnectionPool:
    """An (unopened) async pool; use `async with open_pool(s) as pool:`.

    Each connection is checked as it leaves the pool: after a Postgres restart the
    pooled ones are dead, and a request would otherwise get AdminShutdown (a 500)
    instead of a fresh connection. The check is one round trip on loopback.
    """
    return AsyncConnectionPool(
        database_url(settings),
        min_size=min_size,
        max_size=max_size,
        open=False,
        check=AsyncConnectionPool.check_connection,
        kwargs={
            "autocommit": True,
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}",
        },
    )


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
    # auth.users is readable by the database owner only (as on Supabase), not by
    # service_role: this runs as the connection's own role.
    _require_idle(conn)
    cur = await conn.execute(
        "select id::text, email from auth.users where lower(email) = lower(%s)", [email]
    )
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
