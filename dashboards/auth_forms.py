"""What every sign-in form shares: the page around it, its fields, limits and the session it starts.

The forms live outside Panel's websocket sessions because they set and clear the
session cookie (`dashboards/auth_pages.py` has the forms themselves).
"""

from __future__ import annotations

import html
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tornado.web import RequestHandler

from dashboards import page_sessions
from dashboards.client_address import client_address
from dashboards.context import web_context
from workbench.auth.client import AuthSession
from workbench.auth.request_limits import Action, RequestLimits
from workbench.auth.web_sessions import ABSOLUTE_S, COOKIE_NAME

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · Voice Workbench</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; }}
 main {{ max-width: 360px; margin: 10vh auto; background: #fff; padding: 2rem; border-radius: 8px;
        box-shadow: 0 1px 4px #0002; }}
 h1 {{ font-size: 1.3rem; margin-top: 0; }} label {{ display: block; margin: .8rem 0 .2rem; }}
 input {{ width: 100%; padding: .5rem; box-sizing: border-box; }}
 button {{ margin-top: 1.2rem; width: 100%; padding: .6rem; background: #2b59c3; color: #fff;
          border: 0; border-radius: 4px; font-size: 1rem; }}
 .error {{ color: #b00020; }} .note {{ color: #2e7d32; }} nav {{ margin-top: 1rem; font-size: .9rem; }}
</style></head><body><main><h1>{title}</h1>{body}</main></body></html>"""


def form_field(name: str, label: str, kind: str = "text", value: str = "") -> str:
    return (
        f'<label for="{name}">{label}</label>'
        f'<input id="{name}" name="{name}" type="{kind}" value="{html.escape(value)}" required>'
    )


def safe_next(target: str | None) -> str:
    """A same-site path to go to after sign-in, else "/".

    An open redirect would hand the fresh session to another site. Only a plain
    path is accepted: no scheme or host, no backslash ("/\\host" is another host to
    browsers) and no control or space character anywhere (browsers drop tabs and
    newlines before they parse, so "/<TAB>/host" reads as "//host"). A page session
    named in it is dropped: a page never takes its session from a link.
    """
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(not c.isprintable() or c.isspace() for c in target)
    ):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name not in page_sessions.SESSION_ARGUMENTS
    ]
    return urlunsplit(("", "", parts.path, urlencode(query), parts.fragment))


# The longest value each form field takes (an e-mail address is at most 254 characters;
# Supabase Auth reads at most 72 bytes of a password, bcrypt's limit, but a longer
# passphrase is not an error). Anything longer is refused before it goes anywhere.
FIELD_LIMITS = {"email": 254, "password": 1024, "display_name": 100, "token_hash": 256}
FIELD_LABELS = {
    "email": "Email",
    "password": "Password",
    "display_name": "Display name",
    "token_hash": "The link",
}


class InvalidField(ValueError):
    """A form field that is missing, empty, too long or sent more than once (a 400 on the form)."""


class FormHandler(RequestHandler):
    def field(self, name: str, *, required: bool = True, body: bool = True) -> str:
        """One form (or, `body=False`, query) field as text, or InvalidField saying what is wrong.

        Tornado strips surrounding whitespace and control characters, as the forms
        always have, so a value reads the same at registration and at sign-in.
        """
        values = self.get_body_arguments(name) if body else self.get_query_arguments(name)
        label = FIELD_LABELS.get(name, name)
        if len(values) > 1:
            raise InvalidField(f"{label} was sent more than once.")
        value = values[0] if values else ""
        if required and not value:
            raise InvalidField(f"{label} is required.")
        if len(value) > FIELD_LIMITS.get(name, 1024):
            raise InvalidField(
                f"{label} is too long (at most {FIELD_LIMITS.get(name, 1024)} characters)."
            )
        return value

    def client_key(self) -> str:
        """The browser's address for rate limits (through our trusted proxies only)."""
        return client_address(
            self.request.remote_ip or "unknown",
            self.request.headers.get("X-Forwarded-For"),
            web_context().trusted_proxies,
        )

    async def take_request(self, limits: RequestLimits, action: Action, email: str) -> None:
        """Count a register/reset request against this client and e-mail (raises TooManyAttempts)."""
        async with web_context().connection() as conn:
            await limits.take(conn, action, client=self.client_key(), email=email)

    async def start_session(self, auth: AuthSession) -> None:
        """Store the signed-in session server-side and give the browser its cookie."""
        context = web_context()
        async with context.connection() as conn:
            cookie = await context.sessions.create(
                conn, auth, user_agent=self.request.headers.get("User-Agent")
            )
        self.set_cookie(
            COOKIE_NAME,
            cookie,
            httponly=True,
            # Behind the TLS proxy the request itself arrives as http on loopback.
            secure=web_context().settings.public_url.startswith("https://"),
            samesite="Lax",
            expires_days=ABSOLUTE_S / 86400,
        )

    def page(self, title: str, body: str, *, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.write(PAGE.format(title=title, body=body))

    def form(
        self, action: str, fields: str, button: str, *, message: str = "", error: bool = True
    ) -> str:
        notice = (
            f'<p class="{"error" if error else "note"}" role="alert">{html.escape(message)}</p>'
            if message
            else ""
        )
        return f'{notice}<form method="post" action="{action}">{self.xsrf_form_html()}{fields}<button type="submit">{button}</button></form>'
