"""What every request and page of the web server shares: settings, the database pool, auth.

One `WebContext` per server process. Pages act under the signed-in user's
RLS identity (`as_user`); only session bookkeeping and the login rate limit
use the server's own connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from dashboards.client_address import parse_networks
from workbench.auth.client import AuthFailure, SupabaseAuth
from workbench.auth.tokens import verifier_for
from workbench.auth.web_sessions import WebSession, WebSessions
from workbench.config import Settings, get_settings
from workbench.db.connection import open_pool, rls_session

# How long an open page trusts its last check of the session before asking again:
# a sign-out, expiry or password change reaches open pages within this many seconds.
LIVENESS_S = 5.0


class SessionEnded(AuthFailure):
    """The browser session behind an open page has ended (sign-out, expiry, password change)."""


class WebContext:
    """Settings, lazily opened pools, Supabase Auth and the session store of this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.verifier = verifier_for(settings)
        self._pools: dict[str, AsyncConnectionPool] = {}
        self._opening = asyncio.Lock()
        # The local TLS proxy forwards every browser from loopback: believe its
        # X-Forwarded-For unless trusted proxies are configured explicitly.
        local_proxy = "127.0.0.1/32" if settings.tls_host and settings.is_local else None
        self.trusted_proxies = parse_networks(settings.trusted_proxies or local_proxy)
        self._checked: dict[str, tuple[float, WebSession]] = {}
        if settings.supabase_anon_key is None:
            raise ValueError("the web server needs SUPABASE_ANON_KEY")
        self.auth = SupabaseAuth(
            auth_url=settings.auth_url,
            anon_key=settings.supabase_anon_key.get_secret_value(),
            verifier=self.verifier,
            connect=self.connection,
        )
        self.sessions = WebSessions(self.verifier, refresh=self.auth.refresh)

    async def _open(self, name: str, max_size: int, role: str | None = None) -> AsyncConnectionPool:
        # Opened on first use, inside the server's event loop; under a lock, so that
        # pages opening at once share one pool instead of each opening (and leaking) one.
        async with self._opening:
            pool = self._pools.get(name)
            if pool is None:
                pool = open_pool(
                    self.settings,
                    min_size=1,
                    max_size=max_size,
                    name=f"voice-workbench-web-{name}",
                    role=role,
                )
                await pool.open()
                self._pools[name] = pool
        return pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection as the server itself (sign-in, sessions, login guard, rooms).

        It acts as `service_role` (the server's own tables in `private` are that
        role's); a pool of its own, apart from the pages' queries: a page whose
        query hangs (until the statement timeout) cannot keep anyone from signing in.
        """
        async with (await self._open("server", 4, role="service_role")).connection() as conn:
            yield conn

    @asynccontextmanager
    async def page_connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection for a page's work (queries under RLS, exports)."""
        async with (await self._open("pages", 8)).connection() as conn:
            yield conn

    async def aclose(self) -> None:
        """Close the pools (the server keeps them for its lifetime; tests close theirs)."""
        for pool in self._pools.values():
            await pool.close()
        self._pools.clear()

    async def resolve(self, cookie_value: str | None) -> WebSession | None:
        """The signed-in session behind a cookie value, if any; it counts as a liveness check."""
        async with self.connection() as conn:
            session = await self.sessions.resolve(conn, cookie_value)
        if session is not None:
            # The page that just resolved its session need not resolve it again at once.
            self._remember(session)
        return session

    def _remember(self, session: WebSession) -> None:
        now = time.monotonic()
        if len(self._checked) > 10_000:  # forget stale checks rather than grow forever
            self._checked = {k: v for k, v in self._checked.items() if now - v[0] < LIVENESS_S}
        self._checked[session.cookie] = (now, session)

    async def live(self, session: WebSession) -> WebSession:
        """The session as it stands now, re-checked server-side at most every LIVENESS_S.

        The check also counts as activity for the idle timer and refreshes an
        expired access token. Raises SessionEnded when the session is gone.
        """
        now = time.monotonic()
        checked = self._checked.get(session.cookie)
        if checked is not None and now - checked[0] < LIVENESS_S:
            return checked[1]
        current = await self.resolve(session.cookie)
        if current is None:
            self._checked.pop(session.cookie, None)
            raise SessionEnded("your session has ended: sign in again")
        return current

    @asynccontextmanager
    async def as_user(self, session: WebSession) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection inside the user's RLS session (one transaction)."""
        async with self.page_connection() as conn, rls_session(conn, session.claims) as scoped:
            yield scoped


@lru_cache(maxsize=1)
def web_context() -> WebContext:
    """The process-wide context."""
    return WebContext(get_settings())
