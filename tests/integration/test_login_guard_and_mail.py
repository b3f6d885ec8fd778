"""Failed-login rate limiting (in Postgres), the mail catcher, and auth errors that need no GoTrue."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import smtplib
import socket
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import psycopg
import pytest

from stack.mailcatcher import links_in, read_messages
from stack.services import LocalStack
from workbench.auth.client import AuthUnavailable, SupabaseAuth
from workbench.auth.login_guard import LoginGuard, TooManyAttempts
from workbench.auth.request_limits import RequestLimits
from workbench.auth.tokens import TokenVerifier

pytestmark = pytest.mark.integration


def _connector(dsn: str):  # type: ignore[no-untyped-def]
    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            yield conn

    return connect


async def _fail(
    guard: LoginGuard, conn: psycopg.AsyncConnection[Any], email: str, client: str
) -> None:
    attempt = await guard.begin(conn, email=email, client=client)
    await guard.finish(conn, attempt, succeeded=False)


async def test_a_client_guessing_one_account_waits_the_window_and_only_that_client(
    app_db: str,
) -> None:
    guard = LoginGuard(max_pair_failures=3, max_client_failures=100, window_s=600)
    email = f"victim-{secrets.token_hex(3)}@example.org"
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        for _ in range(3):
            await _fail(guard, conn, email, "10.0.0.1")
        with pytest.raises(TooManyAttempts, match=r"try again in \d+ s") as excinfo:
            await guard.begin(conn, email=email.upper(), client="10.0.0.1")
        assert 0 < excinfo.value.retry_after_s <= 600
        # The owner, elsewhere, is not locked out by the guesser.
        attempt = await guard.begin(conn, email=email, client="10.0.0.2")
        await guard.finish(conn, attempt, succeeded=True)
        # An account's lock does not spill onto other accounts.
        await guard.begin(conn, email=f"other-{email}", client="10.0.0.1")


async def test_many_clients_guessing_one_account_meet_a_short_backoff(app_db: str) -> None:
    """A distributed guess is slowed per account, by seconds, never a long lock on the owner."""
    guard = LoginGuard(max_pair_failures=100, free_account_failures=4, max_backoff_s=60)
    email = f"target-{secrets.token_hex(3)}@example.org"
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        for i in range(4):
            await _fail(guard, conn, email, f"198.51.100.{i}")
        with pytest.raises(TooManyAttempts) as first:
            await guard.begin(conn, email=email, client="203.0.113.9")
        assert first.value.retry_after_s == 1  # 2^0 s after the last failure
        await asyncio.sleep(1.1)
        await _fail(guard, conn, email, "203.0.113.9")  # allowed after the wait
        with pytest.raises(TooManyAttempts) as second:
            await guard.begin(conn, email=email, client="203.0.113.10")
        assert second.value.retry_after_s == 2  # and it doubles


async def test_parallel_wrong_passwords_are_each_counted(app_db: str) -> None:
    """Check-then-record let parallel guesses through; begin() counts each before it leaves."""
    guard = LoginGuard(max_pair_failures=3, max_client_failures=100)
    email = f"raced-{secrets.token_hex(3)}@example.org"

    async def attempt() -> bool:
        async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
            try:
                await guard.begin(conn, email=email, client="10.9.9.9")  # outcome not in yet
            except TooManyAttempts:
                return False
            return True

    let_through = await asyncio.gather(*(attempt() for _ in range(10)))
    assert sum(let_through) == 3


async def test_one_client_guessing_many_accounts_is_stopped(app_db: str) -> None:
    guard = LoginGuard(max_pair_failures=100, max_client_failures=4, window_s=600)
    client = f"203.0.113.{secrets.randbelow(200)}-{secrets.token_hex(2)}"
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        for i in range(4):
            await _fail(guard, conn, f"user{i}@example.org", client)
        with pytest.raises(TooManyAttempts):
            await guard.begin(conn, email="fresh@example.org", client=client)


def test_login_attempts_are_out_of_reach_of_api_roles(app_db: str) -> None:
    with psycopg.connect(app_db, autocommit=True) as conn:
        for role in ("anon", "authenticated"):
            conn.execute(psycopg.sql.SQL("set role {}").format(psycopg.sql.Identifier(role)))
            for query in (
                "select count(*) from private.login_attempts",
                "select count(*) from private.request_events",
                "select private.request_take('reset', array['k'], array[1000], 60)",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(query)
            conn.execute("reset role")


async def test_register_and_reset_requests_are_limited_per_client_and_per_email(
    app_db: str,
) -> None:
    """Decided and recorded in one step: parallel requests are each counted."""
    limits = RequestLimits(per_client=3, per_email=100)
    client = f"198.51.100.{secrets.randbelow(200)}"

    async def request(n: int) -> bool:
        async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
            try:
                await limits.take(conn, "register", client=client, email=f"new{n}@example.org")
            except TooManyAttempts:
                return False
            return True

    assert sum(await asyncio.gather(*(request(n) for n in range(10)))) == 3
    # Per e-mail, from any client: no inbox gets more than `per_email` reset mails.
    limits = RequestLimits(per_client=100, per_email=2, window_s=900)
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        for n in range(2):
            await limits.take(conn, "reset", client=f"10.0.0.{n}", email="Owner@example.org")
        with pytest.raises(
            TooManyAttempts, match=r"too many requests; try again in \d+ s"
        ) as refused:
            await limits.take(conn, "reset", client="10.0.0.9", email=" owner@example.org")
        assert 0 < refused.value.retry_after_s <= 900
        # Another action's quota is its own.
        await limits.take(conn, "register", client="10.0.0.9", email="owner@example.org")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_dead_auth_server_is_a_clear_error_and_not_a_failed_guess(app_db: str) -> None:
    email = f"someone-{secrets.token_hex(3)}@example.org"
    auth = SupabaseAuth(
        auth_url=f"http://127.0.0.1:{_closed_port()}",
        anon_key="anon",
        verifier=TokenVerifier(jwt_secret="x" * 40),
        guard=LoginGuard(max_pair_failures=1),
        connect=_connector(app_db),
    )
    for _ in range(3):
        with pytest.raises(AuthUnavailable, match="is not reachable"):
            await auth.sign_in(email, "password123", client_key="127.0.0.1")


async def test_rate_limit_applies_before_the_password_leaves(app_db: str) -> None:
    email = f"locked-{secrets.token_hex(3)}@example.org"
    guard = LoginGuard(max_pair_failures=2)
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        for _ in range(2):
            await _fail(guard, conn, email, "c")
    # The auth URL is dead: reaching it would raise AuthUnavailable, so this proves the guard stops first.
    auth = SupabaseAuth(
        auth_url=f"http://127.0.0.1:{_closed_port()}",
        anon_key="anon",
        verifier=TokenVerifier(jwt_secret="x" * 40),
        guard=guard,
        connect=_connector(app_db),
    )
    with pytest.raises(TooManyAttempts):
        await auth.sign_in(email, "password123", client_key="c")


def test_mail_catcher_keeps_messages_and_their_links(stack: LocalStack) -> None:
    to = f"reader-{secrets.token_hex(3)}@example.org"
    message = EmailMessage()
    message["From"] = "auth@workbench.local"
    message["To"] = to
    message["Subject"] = "Reset your password"
    message.set_content("Follow http://127.0.0.1:9999/verify?token=abc&type=recovery to reset.")
    message.add_alternative(
        '<a href="http://127.0.0.1:9999/verify?token=abc&amp;type=recovery">reset</a>',
        subtype="html",
    )
    with smtplib.SMTP("127.0.0.1", stack.mail.port, timeout=5) as smtp:
        smtp.send_message(message)
    (received,) = read_messages(stack.mail.folder, to=to)
    assert received["Subject"] == "Reset your password"
    # Mail holds reset links: owner-only, like everything services write under .local/.
    newest = max(stack.mail.folder.glob("*.eml"), key=lambda path: path.stat().st_mtime_ns)
    assert newest.stat().st_mode & 0o077 == 0
    assert links_in(received) == ["http://127.0.0.1:9999/verify?token=abc&type=recovery"]
