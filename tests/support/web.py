"""Browser sessions for UI tests that are not about auth: a session row as the login page makes it.

Pages other than the auth forms are tested from a server-side session holding an
access token signed with the stack's JWT secret, exactly what the login page
stores after Supabase Auth answers, which spares each test a registration. The
auth journey itself goes through the real forms and GoTrue (test_first_conversation.py).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg

from tests.support.personas import user_token
from workbench.auth.client import AuthSession
from workbench.auth.tokens import TokenVerifier
from workbench.auth.web_sessions import WebSessions

T = TypeVar("T")


async def signed_in_cookie(dsn: str, jwt_secret: str, *, user_id: uuid.UUID, email: str) -> str:
    """The cookie value of a fresh web session for the user (valid one hour)."""
    token = user_token(jwt_secret, user_id=user_id, email=email)
    verifier = TokenVerifier(jwt_secret=jwt_secret)
    auth = AuthSession(token, secrets.token_urlsafe(16), verifier.verify(token))
    conn: Any
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        # As the web server's own pool acts (dashboards/context.py): service_role.
        await conn.execute("set role service_role")
        return await WebSessions(verifier).create(conn, auth, user_agent="ui-test")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from code where Playwright's sync API already owns the event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
