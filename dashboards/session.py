"""The signed-in session behind one open page: who it is, and whether it still stands.

Pages get a `PageSession` when they load; every action goes through
`as_user()`, which re-checks the session server-side and closes the page when
it has ended (sign-out, expiry or a password change elsewhere).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import panel as pn
from psycopg import AsyncConnection

from dashboards.client_address import client_address
from dashboards.context import SessionEnded, web_context
from workbench.auth.tokens import AccessClaims
from workbench.auth.web_sessions import COOKIE_NAME, WebSession


def _page_request() -> Any:
    """The Tornado request that opened this page (Bokeh's session context keeps it)."""
    context = pn.state.curdoc.session_context if pn.state.curdoc else None
    return getattr(getattr(context, "request", None), "_request", None)


def page_client() -> str:
    """The browser's address (through our trusted proxies only), for rate limits."""
    request = _page_request()
    if request is None:
        return "unknown"
    return client_address(
        request.remote_ip or "unknown",
        request.headers.get("X-Forwarded-For"),
        web_context().trusted_proxies,
    )


def session_cookie() -> str | None:
    """The session cookie of the request that opened this page, read server-side.

    It is kept out of Bokeh's session token (see `serve`), so `pn.state.cookies`
    does not have it; the original request's own cookies do.
    """
    request = _page_request()
    cookie = request.cookies.get(COOKIE_NAME) if request is not None else None
    return cookie.value if cookie is not None else None


ENDED_MARKDOWN = "Your session has ended. [Sign in again](/login)."


# How often an open page checks, without counting as use, that its session stands.
WATCH_S = 10


class PageSession:
    """The signed-in session behind one open page, checked again before each action.

    A sign-out, an expiry or a password change elsewhere reaches the page within
    `LIVENESS_S` of its next action, or within `WATCH_S` while it sits idle: the
    page says so and shows nothing more.
    """

    def __init__(self, session: WebSession, body: pn.Column) -> None:
        self._session = session
        self._body = body
        self._watch: Any = None

    def _end(self) -> None:
        self._body[:] = [pn.pane.Markdown(ENDED_MARKDOWN)]
        if self._watch is not None:
            self._watch.stop()

    def watch(self) -> None:
        """Close the page when its session ends, even if no one touches it."""

        async def check() -> None:
            context = web_context()
            async with context.connection() as conn:
                alive = await context.sessions.alive(conn, self._session.cookie)
            if not alive:
                self._end()

        self._watch = pn.state.add_periodic_callback(check, period=WATCH_S * 1000)

    @property
    def user_id(self) -> UUID:
        """The signed-in user's id."""
        return self._session.user_id

    @property
    def claims(self) -> AccessClaims:
        """The claims of the session's current access token."""
        return self._session.claims

    @asynccontextmanager
    async def as_user(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection in the user's RLS session, if the session still stands."""
        context = web_context()
        try:
            self._session = await context.live(self._session)
        except SessionEnded:
            self._end()
            raise
        async with context.as_user(self._session) as conn:
            yield conn
