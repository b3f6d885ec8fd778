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
    """Too many failed logins (or register/reset requests) for this account or from this client."""

    def __init__(self, retry_after_s: int, *, what: str = "failed sign-in attempts") -> None:
        super().__init__(f"too many {what}; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


def account_key(email: str) -> str:
    """The stored key of an account: sha256 of the trimmed, lower-cased email."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


@dataclass(frozen=True)
class LoginGuard:
    """Limits on password attempts (see private.login_begin in the migrations).

    Per account and client: `max_pair_failures` within `window_s`, then that client
    waits the window out. Per client: `max_client_failures` over all accounts. Per
    account from anywhere: after `free_account_failures`, an exponential backoff up
    to `max_backoff_s`, so no one can lock an owner out for long.
    """

    max_pair_failures: int = 5
    max_client_failures: int = 20
    free_account_failures: int = 10
    max_backoff_s: int = 60
    window_s: int = 900

    async def begin(self, conn: AsyncConnection[Any], *, email: str, client: str) -> int:
        """Record an attempt about to be made (a failure until `finish`); its id.

        Raises TooManyAttempts, recording nothing, if this attempt must wait.
        """
        async with service_session(conn):
            cur = await conn.execute(
                "select attempt_id, retry_after_s from private.login_begin(%s, %s, %s, %s, %s, %s, %s)",
                [
                    account_key(email),
                    client,
                    self.max_pair_failures,
                    self.max_client_failures,
                    self.free_account_failures,
                    self.max_backoff_s,
                    self.window_s,
                ],
            )
            row = await cur.fetchone()
        assert row is not None
        attempt_id, retry_after_s = row
        if attempt_id is None:
            raise TooManyAttempts(int(retry_after_s))
        return int(attempt_id)

    async def finish(
        self, conn: AsyncConnection[Any], attempt_id: int, *, succeeded: bool | None
    ) -> None:
        """Record an attempt's outcome; None forgets it (Auth never answered: not a guess)."""
        async with service_session(conn):
            if succeeded is None:
                await conn.execute("delete from private.login_attempts where id = %s", [attempt_id])
            else:
                await conn.execute(
                    "update private.login_attempts set succeeded = %s where id = %s",
                    [succeeded, attempt_id],
                )
