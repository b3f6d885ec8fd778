"""Registration, login, refresh, logout and password reset through Supabase Auth's HTTP API.

Server-side only (the Panel server): every call builds a short-lived
supabase-auth client that persists nothing, failed logins are rate limited by
`LoginGuard` before a password is forwarded, and tokens come back verified.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from psycopg import AsyncConnection
from supabase_auth import AsyncGoTrueClient
from supabase_auth.errors import AuthError, AuthRetryableError

from workbench.auth.login_guard import LoginGuard
from workbench.auth.tokens import AccessClaims, TokenVerifier

MIN_PASSWORD_LENGTH = 8


class AuthFailure(Exception):
    """Base of the errors users see from sign-in and friends."""


class InvalidCredentials(AuthFailure):
    """Wrong email or password (deliberately not saying which)."""


class EmailTaken(AuthFailure):
    """An account with that email exists."""


class WeakPassword(AuthFailure):
    """The password does not meet the policy."""


class AuthUnavailable(AuthFailure):
    """Supabase Auth did not answer."""


class TooManyRequests(AuthFailure):
    """Supabase Auth's own rate limit for this client (or for mail) was reached."""


@dataclass(frozen=True)
class SignUp:
    """A new account: its id, and whether it must confirm its e-mail before signing in."""

    user_id: UUID
    needs_confirmation: bool


@dataclass(frozen=True)
class AuthSession:
    """A signed-in session: tokens and the verified claims of the access token."""

    access_token: str
    refresh_token: str
    claims: AccessClaims

    @property
    def user_id(self) -> UUID:
        """The signed-in user's id."""
        assert self.claims.sub is not None
        return UUID(self.claims.sub)


class SupabaseAuth:
    """Supabase Auth for one project (local GoTrue or hosted)."""

    def __init__(
        self,
        *,
        auth_url: str,
        anon_key: str,
        verifier: TokenVerifier,
        guard: LoginGuard | None = None,
        connect: Callable[[], contextlib.AbstractAsyncContextManager[AsyncConnection[Any]]]
        | None = None,
    ) -> None:
        """`connect` yields a database connection for the login guard (omit to skip rate limiting)."""
        self._auth_url = auth_url
        self._anon_key = anon_key
        self._verifier = verifier
        self._guard = guard or LoginGuard()
        self._connect = connect

    @contextlib.asynccontextmanager
    async def _client(self, client_key: str | None = None) -> AsyncIterator[AsyncGoTrueClient]:
        headers = {"apikey": self._anon_key, "Authorization": f"Bearer {self._anon_key}"}
        if client_key:
            # Every call comes from this server: name the browser, so Supabase Auth's
            # per-client rate limits (GOTRUE_RATE_LIMIT_HEADER) count each user apart.
            headers["X-Forwarded-For"] = client_key
        client = AsyncGoTrueClient(
            url=self._auth_url,
            headers=headers,
            persist_session=False,
            auto_refresh_token=False,
        )
        try:
            yield client
        except (httpx.TransportError, AuthRetryableError) as exc:
            raise AuthUnavailable(
                f"Supabase Auth at {self._auth_url} is not reachable ({type(exc).__name__})"
            ) from None
        except AuthError as exc:  # the API's answers, and the client's own checks of a request
            raise _translate(exc) from None

    def _session(self, response: Any) -> AuthSession:
        session = response.session
        if session is None:
            raise AuthFailure("Supabase Auth returned no session (is email confirmation pending?)")
        return AuthSession(
            session.access_token, session.refresh_token, self._verifier.verify(session.access_token)
        )

    async def sign_up(
        self,
        email: str,
        password: str,
        *,
        display_name: str | None = None,
        client_key: str | None = None,
    ) -> SignUp:
        """Register; the profile is created by the database on sign-up."""
        _require_strong(password)
        credentials: dict[str, Any] = {"email": email, "password": password}
        if display_name:
            credentials["options"] = {"data": {"display_name": display_name}}
        async with self._client(client_key) as client:
            response = await client.sign_up(credentials)  # type: ignore[arg-type]
        if response.user is None:
            raise AuthFailure("Supabase Auth returned no user")
        # No session: the project requires the confirmation mail first.
        return SignUp(UUID(response.user.id), needs_confirmation=response.session is None)

    async def confirm_sign_up(
        self, token_hash: str, *, client_key: str | None = None
    ) -> AuthSession:
        """Redeem the confirmation mail's token hash; returns the new account's first session."""
        async with self._client(client_key) as client:
            return self._session(
                await client.verify_otp({"type": "email", "token_hash": token_hash})
            )

    async def sign_in(self, email: str, password: str, *, client_key: str) -> AuthSession:
        """Sign in with a password; rate limited per account and client (`LoginGuard`).

        The attempt is recorded before the password leaves, so parallel guesses are
        each counted; an Auth server that does not answer costs the user nothing.
        """
        attempt: int | None = None
        if self._connect is not None:
            async with self._connect() as conn:
                attempt = await self._guard.begin(conn, email=email, client=client_key)
        outcome: bool | None = None
        try:
            async with self._client(client_key) as client:
                response = await client.sign_in_with_password(
                    {"email": email, "password": password}
                )
            session = self._session(response)
            outcome = True
        except InvalidCredentials:
            outcome = False
            raise
        finally:
            if attempt is not None and self._connect is not None:
                async with self._connect() as conn:
                    await self._guard.finish(conn, attempt, succeeded=outcome)
        return session

    async def refresh(self, refresh_token: str) -> AuthSession:
        """A new session from a refresh token (each refresh token works once)."""
        async with self._client() as client:
            return self._session(await client.refresh_session(refresh_token))

    async def sign_out(self, session: AuthSession) -> None:
        """Revoke the session's refresh tokens."""
        await self.revoke(session.access_token, session.refresh_token)

    async def revoke(self, access_token: str, refresh_token: str) -> None:
        """Revoke a session by its tokens (logout of a stored web session)."""
        async with self._client() as client:
            await client.set_session(access_token, refresh_token)
            await client.sign_out()

    async def request_password_reset(
        self, email: str, *, redirect_to: str, client_key: str | None = None
    ) -> None:
        """Send the recovery email (says nothing about whether the account exists)."""
        async with self._client(client_key) as client:
            await client.reset_password_for_email(email, {"redirect_to": redirect_to})

    async def complete_password_reset(
        self, token_hash: str, new_password: str, *, client_key: str | None = None
    ) -> AuthSession:
        """Redeem the recovery link's token and set a new password; returns the new session.

        Every other session of the user ends at Supabase Auth (their refresh tokens
        stop working): whoever knew the old password is out.
        """
        _require_strong(new_password)
        async with self._client(client_key) as client:
            session = self._session(
                await client.verify_otp({"type": "recovery", "token_hash": token_hash})
            )
            await client.set_session(session.access_token, session.refresh_token)
            await client.update_user({"password": new_password})
            await client.sign_out({"scope": "others"})
        return session

    async def change_password(
        self,
        session: AuthSession,
        current_password: str,
        new_password: str,
        *,
        client_key: str,
    ) -> None:
        """Change the signed-in user's password, proving the current one first.

        The proof goes through `sign_in`, so it is rate limited like a sign-in: a
        session left open on a shared machine is not a way to guess or take over
        the password. Every other session of the user ends at Supabase Auth.
        """
        _require_strong(new_password)
        if not session.claims.email:
            raise AuthFailure("this account has no e-mail to check the current password against")
        try:
            await self.sign_in(session.claims.email, current_password, client_key=client_key)
        except InvalidCredentials:
            raise InvalidCredentials("the current password is wrong") from None
        async with self._client(client_key) as client:
            await client.set_session(session.access_token, session.refresh_token)
            await client.update_user({"password": new_password})
            # Also ends the session the check above opened.
            await client.sign_out({"scope": "others"})


def _require_strong(password: str) -> None:
    """The password policy, checked before a password goes to Supabase Auth."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"passwords have at least {MIN_PASSWORD_LENGTH} characters")


def _translate(exc: AuthError) -> AuthFailure:
    code = getattr(exc, "code", None) or ""
    # "Email not confirmed" is GoTrue's answer to the right password of an unconfirmed
    # account: answered like a wrong one, so a guess never learns that it was right.
    if code in ("invalid_credentials", "user_not_found", "email_not_confirmed") or (
        "Invalid login credentials" in str(exc)
    ):
        return InvalidCredentials("wrong email or password")
    if code in ("user_already_exists", "email_exists"):
        return EmailTaken("an account with this email already exists")
    if code == "weak_password":
        return WeakPassword(str(exc))
    if code in ("over_request_rate_limit", "over_email_send_rate_limit"):
        return TooManyRequests("too many requests from here: try again in a few minutes")
    return AuthFailure(str(exc))
