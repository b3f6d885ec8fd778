"""Server-side web sessions in Postgres: create, resolve, refresh, expire, end."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import Any

import psycopg
import pytest

from dashboards.context import WebContext
from tests.support.personas import Persona, create_user, user_token
from workbench.auth.client import AuthSession, AuthUnavailable
from workbench.auth.tokens import TokenVerifier
from workbench.auth.web_sessions import WebSessions
from workbench.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def user(app_db: str, jwt_secret: str) -> Persona:
    with psycopg.connect(app_db, autocommit=True) as conn:
        return create_user(conn, name="web", role="user", jwt_secret=jwt_secret)


def _auth(jwt_secret: str, user: Persona) -> AuthSession:
    """What Supabase Auth returns on sign-in (token signed with the stack's secret)."""
    assert user.id is not None
    token = user_token(jwt_secret, user_id=user.id, email="web@example.org")
    return AuthSession(
        token, secrets.token_urlsafe(16), TokenVerifier(jwt_secret=jwt_secret).verify(token)
    )


async def _expire_access_token(conn: psycopg.AsyncConnection[Any], cookie: str) -> None:
    await conn.execute(
        "update private.web_sessions set access_expires_at = now() - interval '1 minute' where id_hash = %s",
        [hashlib.sha256(cookie.encode()).hexdigest()],
    )


async def test_a_session_resolves_until_it_ends(
    app_db: str, jwt_secret: str, user: Persona
) -> None:
    sessions = WebSessions(TokenVerifier(jwt_secret=jwt_secret))
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        cookie = await sessions.create(conn, _auth(jwt_secret, user), user_agent="pytest")
        session = await sessions.resolve(conn, cookie)
        assert session is not None
        assert session.user_id == user.id
        assert session.claims.sub == str(user.id)
        assert await sessions.resolve(conn, cookie + "x") is None
        assert await sessions.resolve(conn, None) is None
        # Only the hash is stored: the cookie value itself is nowhere in the table.
        cur = await conn.execute(
            "select id_hash from private.web_sessions where user_id = %s", [user.id]
        )
        assert (await cur.fetchone())[0] == hashlib.sha256(cookie.encode()).hexdigest()  # type: ignore[index]
        tokens = await sessions.end(conn, cookie)
        assert tokens is not None
        assert await sessions.resolve(conn, cookie) is None
        assert await sessions.end(conn, cookie) is None


async def test_idle_and_absolute_expiry(app_db: str, jwt_secret: str, user: Persona) -> None:
    sessions = WebSessions(TokenVerifier(jwt_secret=jwt_secret))
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        idle = await sessions.create(conn, _auth(jwt_secret, user))
        old = await sessions.create(conn, _auth(jwt_secret, user))
        await conn.execute(
            "update private.web_sessions set last_seen_at = now() - interval '13 hours' where id_hash = %s",
            [hashlib.sha256(idle.encode()).hexdigest()],
        )
        await conn.execute(
            "update private.web_sessions set expires_at = now() - interval '1 second' where id_hash = %s",
            [hashlib.sha256(old.encode()).hexdigest()],
        )
        assert await sessions.resolve(conn, idle) is None
        assert await sessions.resolve(conn, old) is None


async def test_an_expired_access_token_is_refreshed_or_the_session_ends(
    app_db: str, jwt_secret: str, user: Persona
) -> None:
    fresh = _auth(jwt_secret, user)
    used: list[str] = []

    async def refresh(token: str) -> AuthSession:
        used.append(token)
        return fresh

    async def refuse(token: str) -> AuthSession:
        raise RuntimeError("refresh token already used")

    verifier = TokenVerifier(jwt_secret=jwt_secret)
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        stale = _auth(jwt_secret, user)
        cookie = await WebSessions(verifier).create(conn, stale)
        await _expire_access_token(conn, cookie)
        session = await WebSessions(verifier, refresh=refresh).resolve(conn, cookie)
        assert session is not None
        assert session.access_token == fresh.access_token
        assert used == [stale.refresh_token]

        second = await WebSessions(verifier).create(conn, stale)
        await conn.execute(
            "update private.web_sessions set access_expires_at = now() - interval '1 minute' where id_hash = %s",
            [hashlib.sha256(second.encode()).hexdigest()],
        )
        assert await WebSessions(verifier, refresh=refuse).resolve(conn, second) is None
        cur = await conn.execute(
            "select count(*) from private.web_sessions where id_hash = %s",
            [hashlib.sha256(second.encode()).hexdigest()],
        )
        assert (await cur.fetchone())[0] == 0  # type: ignore[index]


async def test_a_database_reader_cannot_use_the_stored_tokens(
    app_db: str, jwt_secret: str, user: Persona
) -> None:
    """The tokens are sealed with a key from the cookie, which the table does not hold."""
    sessions = WebSessions(TokenVerifier(jwt_secret=jwt_secret))
    auth = _auth(jwt_secret, user)
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        cookie = await sessions.create(conn, auth)
        cur = await conn.execute(
            "select row_to_json(s)::text from private.web_sessions s where id_hash = %s",
            [hashlib.sha256(cookie.encode()).hexdigest()],
        )
        (stored,) = await cur.fetchone()  # type: ignore[misc]
        assert auth.refresh_token not in stored
        assert auth.access_token not in stored
        assert auth.access_token.split(".")[1] not in stored  # not even the claims part
        # With the cookie they come back whole.
        assert await sessions.tokens(conn, cookie) == (auth.access_token, auth.refresh_token)
        # A row stored before sealing (plain tokens) ends instead of failing the request.
        await conn.execute(
            "update private.web_sessions set access_token = %s, refresh_token = %s where id_hash = %s",
            [auth.access_token, auth.refresh_token, hashlib.sha256(cookie.encode()).hexdigest()],
        )
        assert await sessions.resolve(conn, cookie) is None
        assert await sessions.tokens(conn, cookie) is None


async def test_a_session_survives_an_auth_outage(
    app_db: str, jwt_secret: str, user: Persona
) -> None:
    """Refreshing while Supabase Auth is down must not sign the user out for good."""
    fresh = _auth(jwt_secret, user)

    async def down(token: str) -> AuthSession:
        raise AuthUnavailable("Supabase Auth at http://127.0.0.1:1 is not reachable")

    async def back(token: str) -> AuthSession:
        return fresh

    verifier = TokenVerifier(jwt_secret=jwt_secret)
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        cookie = await WebSessions(verifier).create(conn, _auth(jwt_secret, user))
        await _expire_access_token(conn, cookie)
        assert await WebSessions(verifier, refresh=down).resolve(conn, cookie) is None
        resumed = await WebSessions(verifier, refresh=back).resolve(conn, cookie)
        assert resumed is not None
        assert resumed.access_token == fresh.access_token


async def test_sign_in_bookkeeping_works_while_every_page_connection_is_busy(
    settings: Settings, jwt_secret: str, admin_dsn: str
) -> None:
    """Pages and sign-in draw on separate pools: hung page queries cannot lock people out."""
    context = WebContext(settings)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        someone = create_user(conn, name="busy", role="user", jwt_secret=jwt_secret)
    async with context.connection() as conn:
        cookie = await context.sessions.create(conn, _auth(jwt_secret, someone))
    release = asyncio.Event()
    held = asyncio.Event()
    holding = 0

    async def hold_a_page_connection() -> None:
        nonlocal holding
        async with context.page_connection():
            holding += 1
            if holding == 8:
                held.set()
            await release.wait()

    holders = [asyncio.create_task(hold_a_page_connection()) for _ in range(8)]
    try:
        await asyncio.wait_for(held.wait(), timeout=30)
        resolved = await asyncio.wait_for(context.resolve(cookie), timeout=10)
        assert resolved is not None
        assert resolved.user_id == someone.id
    finally:
        release.set()
        await asyncio.gather(*holders)
        await context.aclose()
