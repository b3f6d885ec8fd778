"""Login, registration, password reset and logout: plain HTML forms served by Tornado.

They live outside Panel's websocket sessions because they set and clear the
session cookie. Every form carries Tornado's XSRF token (the server runs with
`xsrf_cookies`); the session cookie is HttpOnly, SameSite=Lax, and Secure when
the page is served over HTTPS. Passwords go to Supabase Auth and nowhere else.
"""

from __future__ import annotations

import contextlib
import html
from typing import Any
from urllib.parse import urlencode

from bokeh.server.auth_provider import AuthProvider
from tornado.web import RequestHandler

from dashboards import page_sessions
from dashboards.auth_forms import FormHandler, InvalidField, form_field, safe_next
from dashboards.context import web_context
from workbench.auth.client import (
    AuthFailure,
    AuthUnavailable,
    EmailTaken,
    InvalidCredentials,
    TooManyRequests,
)
from workbench.auth.login_guard import TooManyAttempts
from workbench.auth.request_limits import (
    REGISTER_LIMITS,
    RESET_LIMITS,
)
from workbench.auth.web_sessions import COOKIE_NAME
from workbench.config import REPO_ROOT

MAIL_TEMPLATES_DIR = REPO_ROOT / "supabase" / "templates"


class LoginHandler(FormHandler):
    """GET: the form. POST: sign in through Supabase Auth, start a server-side session."""

    def get(self) -> None:
        if self.get_argument("registered", ""):
            self._render(
                "Your account is ready: sign in. (If you had one with this address already, "
                "use its password, or reset it.)",
                error=False,
            )
        else:
            self._render()

    def _render(
        self, message: str = "", email: str = "", status: int = 200, error: bool = True
    ) -> None:
        target = safe_next(self.get_argument("next", None))
        fields = form_field("email", "Email", "email", email) + form_field(
            "password", "Password", "password"
        )
        links = (
            '<nav><a href="/register">Create an account</a> · '
            '<a href="/reset">Forgot your password?</a></nav>'
        )
        self.page(
            "Sign in",
            self.form(
                f"/login?{urlencode({'next': target})}",
                fields,
                "Sign in",
                message=message,
                error=error,
            )
            + links,
            status=status,
        )

    async def post(self) -> None:
        try:
            email = self.field("email")
            password = self.field("password")
        except InvalidField as exc:
            self._render(str(exc), self.get_body_argument("email", "")[:254], status=400)
            return
        context = web_context()
        try:
            auth = await context.auth.sign_in(email, password, client_key=self.client_key())
        except InvalidCredentials:
            message = "Wrong email or password."
            if context.settings.auth_confirm_email:
                # The same words whether or not the password was right (see _translate).
                message += " A new account signs in once its email is confirmed."
            self._render(message, email, status=401)
            return
        except TooManyAttempts as exc:
            self._render(str(exc), email, status=429)
            return
        except AuthUnavailable:
            self._render(
                "Sign-in is unavailable right now (Supabase Auth does not answer).",
                email,
                status=503,
            )
            return
        except AuthFailure as exc:
            self._render(str(exc), email, status=400)
            return
        await self.start_session(auth)
        self.redirect(safe_next(self.get_argument("next", None)))


class LogoutHandler(FormHandler):
    """POST (with the XSRF token): end the session here and at Supabase Auth."""

    def get(self) -> None:
        self.page("Sign out", self.form("/logout", "", "Sign out"))

    async def post(self) -> None:
        context = web_context()
        async with context.connection() as conn:
            tokens = await context.sessions.end(conn, self.get_cookie(COOKIE_NAME))
        self.clear_cookie(COOKIE_NAME)
        if tokens is not None:
            # The local session is gone either way; the access token expires on its own.
            with contextlib.suppress(AuthFailure):
                await context.auth.revoke(*tokens)
        self.redirect("/login")


class RegisterHandler(FormHandler):
    """Create an account through Supabase Auth."""

    def get(self) -> None:
        self._render()

    def _render(self, message: str = "", email: str = "", status: int = 200) -> None:
        fields = (
            form_field("display_name", "Display name")
            + form_field("email", "Email", "email", email)
            + form_field("password", "Password (8 characters or more)", "password")
        )
        self.page(
            "Create an account",
            self.form("/register", fields, "Create account", message=message)
            + '<nav><a href="/login">Sign in instead</a></nav>',
            status=status,
        )

    async def post(self) -> None:
        try:
            email = self.field("email")
            password = self.field("password")
            display_name = self.field("display_name", required=False) or None
        except InvalidField as exc:
            self._render(str(exc), self.get_body_argument("email", "")[:254], status=400)
            return
        try:
            await self.take_request(REGISTER_LIMITS, "register", email)
            signed_up = await web_context().auth.sign_up(
                email, password, display_name=display_name, client_key=self.client_key()
            )
        except TooManyAttempts as exc:
            self._render(str(exc).capitalize() + ".", email, status=429)
            return
        except AuthUnavailable:
            self._render("Registration is unavailable right now.", email, status=503)
            return
        except EmailTaken:
            # Answered like a new registration: the form must not tell anyone which
            # addresses have an account. The owner signs in (or resets) as usual.
            self.redirect("/login?" + urlencode({"next": "/", "registered": "1"}))
            return
        except AuthFailure as exc:
            self._render(str(exc), email, status=400)
            return
        if signed_up.needs_confirmation:
            self.page(
                "Check your email",
                f'<p class="note" role="status">We sent a confirmation link to {html.escape(email)}. '
                "Follow it to finish creating your account.</p>",
            )
            return
        self.redirect("/login?" + urlencode({"next": "/", "registered": "1"}))


class ResetHandler(FormHandler):
    """Ask Supabase Auth to mail a recovery link (the answer never says whether the account exists)."""

    def get(self) -> None:
        self._render()

    def _render(self, message: str = "", email: str = "", status: int = 200) -> None:
        self.page(
            "Reset your password",
            self.form(
                "/reset", form_field("email", "Email", "email", email), "Send link", message=message
            ),
            status=status,
        )

    async def post(self) -> None:
        try:
            email = self.field("email")
        except InvalidField as exc:
            self._render(str(exc), status=400)
            return
        # The configured address, not the request's Host header, which the sender chooses.
        base = web_context().settings.public_url
        try:
            await self.take_request(RESET_LIMITS, "reset", email)
            await web_context().auth.request_password_reset(
                email, redirect_to=f"{base}/reset/complete", client_key=self.client_key()
            )
        except (AuthUnavailable, TooManyRequests, TooManyAttempts) as exc:
            unavailable = isinstance(exc, AuthUnavailable)
            self._render(
                "Password reset is unavailable right now."
                if unavailable
                else str(exc).capitalize() + ".",
                email,
                status=503 if unavailable else 429,
            )
            return
        except AuthFailure:
            pass  # do not reveal whether the account exists
        self.page(
            "Check your email",
            '<p class="note">If that account exists, a reset link is on its way.</p>',
        )


class ResetCompleteHandler(FormHandler):
    """The recovery link's landing page: choose a new password, then be signed in.

    Supabase Auth's recovery mail must link here with the token hash, the
    server-side pattern: `{{ .SiteURL }}/reset/complete?token_hash={{ .TokenHash }}`
    (the default template's link puts the tokens in a URL fragment a server never sees).
    """

    def get(self) -> None:
        self._render()

    def _render(self, message: str = "", status: int = 200) -> None:
        try:
            token_hash = self.field("token_hash", body=False)
        except InvalidField:
            token_hash = ""
        if not token_hash:
            self.page(
                "Reset your password",
                '<p class="error" role="alert">This reset link is incomplete.</p>',
                status=400,
            )
            return
        action = "/reset/complete?" + urlencode({"token_hash": token_hash})
        fields = form_field("password", "New password (8 characters or more)", "password")
        self.page(
            "Choose a new password",
            self.form(action, fields, "Set password", message=message),
            status=status,
        )

    async def post(self) -> None:
        context = web_context()
        try:
            token_hash = self.field("token_hash", body=False)
            password = self.field("password")
        except InvalidField as exc:
            self._render(str(exc), status=400)
            return
        try:
            auth = await context.auth.complete_password_reset(
                token_hash, password, client_key=self.client_key()
            )
        except AuthUnavailable:
            self._render("Password reset is unavailable right now.", status=503)
            return
        except AuthFailure as exc:
            self._render(str(exc), status=400)
            return
        # Whoever was signed in with the old password is signed out here too.
        async with context.connection() as conn:
            await context.sessions.end_others(conn, auth.user_id)
        await self.start_session(auth)
        self.redirect("/")


class ConfirmHandler(FormHandler):
    """The confirmation mail's link (when e-mail confirmation is on): confirm, then be signed in.

    GET only shows a button; the POST redeems the token, so a mail scanner that
    fetches links does not use up the link before its owner clicks it.
    """

    def get(self) -> None:
        action = "/confirm?" + urlencode({"token_hash": self.get_argument("token_hash", "")})
        self.page("Confirm your account", self.form(action, "", "Confirm my account"))

    async def post(self) -> None:
        try:
            token_hash = self.field("token_hash", body=False)
            auth = await web_context().auth.confirm_sign_up(
                token_hash, client_key=self.client_key()
            )
        except InvalidField:
            self.page(
                "Confirm your account",
                '<p class="error" role="alert">This confirmation link is incomplete.</p>',
                status=400,
            )
            return
        except AuthUnavailable:
            self.page(
                "Confirm your account",
                '<p class="error" role="alert">Confirmation is unavailable right now; try the link again later.</p>',
                status=503,
            )
            return
        except AuthFailure:
            self.page(
                "Confirm your account",
                '<p class="error" role="alert">This confirmation link is invalid or has expired.</p>',
                status=400,
            )
            return
        await self.start_session(auth)
        self.redirect("/")


class MailTemplateHandler(RequestHandler):
    """Supabase Auth's mail templates (supabase/templates/), fetched by GoTrue when it sends a mail."""

    def get(self, name: str) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write((MAIL_TEMPLATES_DIR / f"{name}.html").read_text())


class WorkbenchAuthProvider(AuthProvider):
    """Bokeh's hook: every app page needs a live session; anonymous users go to /login."""

    @property
    def get_user_async(self) -> Any:
        async def current_user(handler: RequestHandler) -> str | None:
            session = await web_context().resolve(handler.get_cookie(COOKIE_NAME))
            if session is None:
                return None
            user_id = str(session.user_id)
            page_sessions.claim(handler, user_id)  # 403 if it would reach another's page
            return user_id

        return current_user

    @property
    def get_login_url(self) -> Any:
        def login_url(handler: RequestHandler) -> str:
            return "/login?" + urlencode({"next": handler.request.uri or "/"})

        return login_url

    @property
    def logout_url(self) -> str:
        return "/logout"


def auth_routes() -> list[tuple[str, type[RequestHandler]]]:
    """Tornado routes of the auth pages (served without a session)."""
    return [
        (r"/login", LoginHandler),
        (r"/logout", LogoutHandler),
        (r"/register", RegisterHandler),
        (r"/reset", ResetHandler),
        (r"/reset/complete", ResetCompleteHandler),
        (r"/confirm", ConfirmHandler),
        (r"/auth/templates/(recovery|confirmation)\.html", MailTemplateHandler),
    ]
