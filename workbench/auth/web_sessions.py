"""Server-side browser sessions: a random id in an HttpOnly cookie, the tokens in Postgres.

The Panel server signs users in through Supabase Auth and stores the access
and refresh tokens here (`private.web_sessions`, keyed by sha256 of the
cookie value), sealed with a key derived from the cookie value: the database
holds only the hash, so whoever reads the table (a backup, a leaked dump, a
misused service key) can neither find a session's cookie nor use its Supabase
Auth tokens. Only a request carrying the cookie unseals them. Each request resolves the cookie to verified claims; an expired
access token is refreshed through Supabase Auth on the way. Sessions expire
after `IDLE_S` without use and `ABSOLUTE_S` after sign-in, and end on logout.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from cryptography.fernet import Fernet, InvalidToken
from psycopg import AsyncConnection

from workbench.auth.client import AuthSession, AuthUnavailable
from workbench.auth.tokens import AccessClaims, TokenError, TokenVerifier

COOKIE_NAME = "vwb_session"
IDLE_S = 12 * 3600
ABSOLUTE_S = 7 * 24 * 3600
_REFRESH_MARGIN_S = 30

Refresher = Callable[[str], Awaitable[AuthSession]]


@dataclass(frozen=True)
class WebSession:
    """A live session: who, and the verified claims of its current access token.

    `cookie` is the browser's cookie value, kept server-side so an open page can
    re-check its session (`WebContext.live`); it is never rendered.
    """

    user_id: UUID
    claims: AccessClaims
    access_token: str
    cookie: str = field(default="", repr=False, compare=False)


def _hash(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode()).hexdigest()


def _sealer(cookie_value: str) -> Fernet:
    # A different digest from the row key (_hash), so knowing one gives nothing of the other.
    key = hashlib.sha256(b"vwb-session-tokens\0" + cookie_value.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _seal(cookie_value: str, *tokens: str) -> list[str]:
    sealer = _sealer(cookie_value)
    return [sealer.encrypt(token.encode()).decode() for token in tokens]


def _unseal(cookie_value: str, *sealed: str) -> list[str] | None:
    """The tokens, or None for a row not sealed with this cookie (e.g. stored before sealing)."""
    sealer = _sealer(cookie_value)
    try:
        return [sealer.decrypt(value.encode()).decode() for value in sealed]
    except InvalidToken:
        return None


class WebSessions:
    """Create, resolve and end browser sessions (the connection acts as `service_role`)."""

    def __init__(self, verifier: TokenVerifier, refresh: Refresher | None = None) -> None:
        self._verifier = verifier
        self._refresh = refresh

    async def create(
        self, conn: AsyncConnection[Any], auth: AuthSession, *, user_agent: str | None = None
    ) -> str:
        """Store a signed-in session; returns the cookie value (shown to nobody else)."""
        cookie_value = secrets.token_urlsafe(32)
        access_token, refresh_token = _seal(cookie_value, auth.access_token, auth.refresh_token)
        await conn.execute(
            """insert into private.web_sessions
                 (id_hash, user_id, access_token, refresh_token, access_expires_at, expires_at, user_agent)
               values (%s, %s, %s, %s, to_timestamp(%s), now() + make_interval(secs => %s), %s)""",
            [
                _hash(cookie_value),
                auth.user_id,
                access_token,
                refresh_token,
                auth.claims.exp,
                ABSOLUTE_S,
                (user_agent or "")[:500] or None,
            ],
        )
        return cookie_value

    async def resolve(
        self, conn: AsyncConnection[Any], cookie_value: str | None
    ) -> WebSession | None:
        """The session behind a cookie, refreshed if its access token expired; None if there is none."""
        if not cookie_value:
            return None
        cur = await conn.execute(
            """update private.web_sessions set last_seen_at = now()
               where id_hash = %s and expires_at > now()
                 and last_seen_at > now() - make_interval(secs => %s)
               returning user_id, access_token, refresh_token, access_expires_at""",
            [_hash(cookie_value), IDLE_S],
        )
        row = await cur.fetchone()
        if row is None:
            return None
        user_id, sealed_access, sealed_refresh, access_expires_at = row
        unsealed = _unseal(cookie_value, sealed_access, sealed_refresh)
        if unsealed is None:
            await self.end(conn, cookie_value)
            return None
        access_token, refresh_token = unsealed
        if access_expires_at <= datetime.now(UTC) + timedelta(seconds=_REFRESH_MARGIN_S):
            if self._refresh is None:
                return None
            try:
                renewed = await self._refresh(refresh_token)
            except AuthUnavailable:
                # Supabase Auth is down: no fresh token now, but the session is not
                # over; it resumes once Auth answers again.
                return None
            except Exception:  # a revoked or reused refresh token ends the session
                await self.end(conn, cookie_value)
                return None
            await conn.execute(
                """update private.web_sessions set access_token = %s, refresh_token = %s,
                     access_expires_at = to_timestamp(%s) where id_hash = %s""",
                [
                    *_seal(cookie_value, renewed.access_token, renewed.refresh_token),
                    renewed.claims.exp,
                    _hash(cookie_value),
                ],
            )
            access_token = renewed.access_token
        try:
            claims = self._verifier.verify(access_token)
        except TokenError:
            return None
        return WebSession(
            user_id=user_id, claims=claims, access_token=access_token, cookie=cookie_value
        )

    async def alive(self, conn: AsyncConnection[Any], cookie_value: str) -> bool:
        """Whether the session behind a cookie still stands, without counting as use.

        For pages watching their session while idle: a tab left open must not keep
        its session from timing out.
        """
        cur = await conn.execute(
            """select 1 from private.web_sessions
               where id_hash = %s and expires_at > now()
                 and last_seen_at > now() - make_interval(secs => %s)""",
            [_hash(cookie_value), IDLE_S],
        )
        return await cur.fetchone() is not None

    async def tokens(
        self, conn: AsyncConnection[Any], cookie_value: str | None
    ) -> tuple[str, str] | None:
        """The (access, refresh) tokens of a live session, for calls to Supabase Auth as the user."""
        if not cookie_value:
            return None
        cur = await conn.execute(
            """select access_token, refresh_token from private.web_sessions
               where id_hash = %s and expires_at > now()""",
            [_hash(cookie_value)],
        )
        row = await cur.fetchone()
        unsealed = _unseal(cookie_value, row[0], row[1]) if row else None
        return (unsealed[0], unsealed[1]) if unsealed else None

    async def end(
        self, conn: AsyncConnection[Any], cookie_value: str | None
    ) -> tuple[str, str] | None:
        """Forget a session (logout); returns its (access, refresh) tokens to revoke at Auth."""
        if not cookie_value:
            return None
        cur = await conn.execute(
            "delete from private.web_sessions where id_hash = %s returning access_token, refresh_token",
            [_hash(cookie_value)],
        )
        row = await cur.fetchone()
        unsealed = _unseal(cookie_value, row[0], row[1]) if row else None
        return (unsealed[0], unsealed[1]) if unsealed else None

    async def end_others(
        self, conn: AsyncConnection[Any], user_id: UUID, *, keep: str | None = None
    ) -> int:
        """End every session of `user_id` but the one behind cookie `keep` (after a password change or reset)."""
        cur = await conn.execute(
            "delete from private.web_sessions where user_id = %s and id_hash <> %s",
            [user_id, _hash(keep) if keep else ""],
        )
        return cur.rowcount
