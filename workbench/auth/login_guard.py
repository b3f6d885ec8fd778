"""Rate limiting of failed logins per account and per client, kept in Postgres.

Checked before a password reaches Supabase Auth, so a guessing attack is
refused with a clear "try again in N s" and costs the auth server nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from workbench.db.connection import service_session


class TooManyAttempts(PermissionError):
    """Too many failed logins for this account or from this client."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed sign-in attempts; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


def account_key(email: str) -> str:
    """The stored key of an account: sha256 of the trimmed, lower-cased email."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


@dataclass(frozen=True)
class LoginGuard:
    """Limits: at most `max_account_failures` per account (since its last success) and
    `max_client_failures` per client, within `window_s`."""

    max_account_failures: int = 5
    max_client_failures: int = 20
    window_s: int = 900

    async def check(self, conn: AsyncConnection[Any], *, email: str, client: str) -> None:
        """Raise TooManyAttempts if this attempt must wait."""
        async with service_session(conn):
            cur = await conn.execute(
                "select allowed, retry_after_s from private.login_allowed(%s, %s, %s, %s, %s)",
                [
                    account_key(email),
                    client,
                    self.max_account_failures,
                    self.max_client_failures,
                    self.window_s,
                ],
            )
            row = await cur.fetchone()
        assert row is not None
        allowed, retry_after_s = row
        if not allowed:
            raise TooManyAttempts(int(retry_after_s))

    async def record(
        self, conn: AsyncConnection[Any], *, email: str, client: str, succeeded: bool
    ) -> None:
        """Record the outcome of an attempt."""
        async with service_session(conn):
            await conn.execute(
                "insert into private.login_attempts (account_key, client_key, succeeded) values (%s, %s, %s)",
                [account_key(email), client, succeeded],
            )
