"""Rate limits on registration and password-reset requests, kept in Postgres.

Supabase Auth limits the mail it sends per hour for the whole project; these
limits are per client address and per e-mail, checked before Auth is asked, so
one client cannot use the quota up (or fill someone's inbox with reset mails).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from psycopg import AsyncConnection

from workbench.auth.login_guard import TooManyAttempts, account_key
from workbench.db.connection import service_session

Action = Literal["register", "reset"]


@dataclass(frozen=True)
class RequestLimits:
    """Requests allowed per `window_s`: per client address, and per e-mail address."""

    per_client: int
    per_email: int
    window_s: int = 3600

    async def take(
        self, conn: AsyncConnection[Any], action: Action, *, client: str, email: str
    ) -> None:
        """Count one request, or raise TooManyAttempts (recording nothing) if it must wait.

        The answer does not depend on whether `email` has an account.
        """
        async with service_session(conn):
            cur = await conn.execute(
                "select retry_after_s from private.request_take(%s, %s, %s, %s)",
                [
                    action,
                    [f"client:{client}", f"email:{account_key(email)}"],
                    [self.per_client, self.per_email],
                    self.window_s,
                ],
            )
            row = await cur.fetchone()
        assert row is not None
        if row[0]:
            raise TooManyAttempts(int(row[0]), what="requests")


# A lab behind one NAT registers a handful of people in an hour; a reset link is
# asked for a few times at most before it arrives.
REGISTER_LIMITS = RequestLimits(per_client=10, per_email=3)
RESET_LIMITS = RequestLimits(per_client=10, per_email=3, window_s=900)
