"""The Panel server: pages behind Supabase Auth sessions, served at one URL by `./dev up`.

    python -m dashboards            # serves on 127.0.0.1:<WORKBENCH_PANEL_PORT> (5006)

Pages are built per browser session; each resolves the session cookie to the
user's verified claims and queries under that user's RLS identity. Static
resources are served by this server (no CDN: no request leaves the machine).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import panel as pn
from psycopg import AsyncConnection

from dashboards.auth_pages import WorkbenchAuthProvider, auth_routes
from dashboards.client_address import client_address
from dashboards.components.voice_room import VoiceRoom
from dashboards.context import SessionEnded, web_context
from dashboards.files import file_routes
from dashboards.pages.account import AccountStore, profile_view, settings_view
from dashboards.pages.admin import AdminStore, admin_view, parse_arms
from dashboards.pages.analytics import AnalyticsStore, analytics_view
from dashboards.pages.conversation import ConversationStore, conversation_view
from dashboards.pages.history import HistoryStore, history_view
from workbench.auth.client import AuthFailure, AuthSession
from workbench.auth.tokens import AccessClaims
from workbench.auth.web_sessions import COOKIE_NAME, WebSession
from workbench.db.errors import DataError
from workbench.db.models import AppRole
from workbench.db.repositories import ProfilesRepo, PromptsRepo
from workbench.exports import Format, export_conversations
from workbench.storage import ObjectStore

log = logging.getLogger("workbench.web")

# Loaded up front: a page that adds a Tabulator later would find its JS missing.
pn.extension("tabulator", notifications=True)

# path -> (title, lowest role that sees it)
PAGES: dict[str, tuple[str, AppRole]] = {
    "conversation": ("Conversation", "user"),
    "history": ("History", "user"),
    "analytics": ("Analytics", "user"),
    "profile": ("Profile", "user"),
    "settings": ("Settings", "user"),
    "admin": ("Admin", "admin"),
}


def _template(title: str, body: pn.viewable.Viewable, nav: pn.Column) -> pn.template.BaseTemplate:
    template = pn.template.BootstrapTemplate(
        title=f"Voice Workbench · {title}", header_background="#2b59c3"
    )
    template.sidebar.append(nav)
    template.main.append(body)
    return template


def _nav(held: set[AppRole]) -> str:
    links = "\n".join(
        f"- [{title}](/{path})" for path, (title, needs) in PAGES.items() if needs in held
    )
    return f"{links}\n\n---\n\n[Sign out](/logout)"


def _page_request() -> Any:
    """The Tornado request that opened this page (Bokeh's session context keeps it)."""
    context = pn.state.curdoc.session_context if pn.state.curdoc else None
    return getattr(getattr(context, "request", None), "_request", None)


def _page_client() -> str:
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


def _session_page(
    path: str, build: Callable[[PageSession, pn.Column], Any]
) -> Callable[[], pn.template.BaseTemplate]:
    """A page whose body is filled once the browser session is resolved (on load, off the render path).

    Navigation shows only the pages the user's role may open; a page above the
    role is refused here, and its data would be refused by RLS anyway.
    """
    title, needs = PAGES[path]

    def page() -> pn.template.BaseTemplate:
        body = pn.Column(
            pn.indicators.LoadingSpinner(value=True, size=40, name="Loading…"),
            sizing_mode="stretch_width",
        )
        nav = pn.Column()

        async def fill() -> None:
            context = web_context()
            resolved = await context.resolve(session_cookie())
            if resolved is None:
                body[:] = [pn.pane.Markdown(ENDED_MARKDOWN)]
                return
            session = PageSession(resolved, body)
            async with session.as_user() as conn:
                held = await ProfilesRepo(conn).roles_held()  # the ranking lives in SQL
            nav[:] = [pn.pane.Markdown(_nav(held))]
            if needs not in held:
                body[:] = [pn.pane.Alert(f"{title} is for {needs}s only.", alert_type="danger")]
                return
            await build(session, body)
            session.watch()

        pn.state.onload(fill)
        return _template(title, body, nav)

    return page


async def _analytics(session: PageSession, body: pn.Column) -> None:
    store = AnalyticsStore()

    async def reload() -> None:
        try:
            await store.load(lambda: session.as_user())
        except ValueError as exc:  # e.g. an inverted date range
            if pn.state.notifications is not None:
                pn.state.notifications.error(str(exc))

    async def load_samples(_event: Any = None) -> None:
        async with session.as_user() as conn:
            await store.load_samples(conn)

    await reload()
    store.param.watch(lambda event: pn.state.execute(load_samples), "selected_run")
    body[:] = [analytics_view(store, reload)]


async def _conversation(session: PageSession, body: pn.Column) -> None:
    context = web_context()
    store = ConversationStore()
    voice = VoiceRoom()
    async with session.as_user() as conn:
        await store.load(conn)

    async def start() -> None:
        await store.start(
            context.settings,
            context.connection,
            user_id=session.user_id,
            display_name=session.claims.email or "researcher",
            voice=voice,
        )

    async def report_heard() -> None:
        if voice.heard:
            async with session.as_user() as conn:
                await store.report_heard(conn, voice.heard)

    # Retried as the transcript and the 2-second statistics update, and once more on Stop:
    # the agent may not have written the conversation row when the browser measures.
    voice.param.watch(lambda _e: pn.state.execute(report_heard), ["heard", "transcript", "stats"])

    def stop() -> None:
        store.stop(voice)
        pn.state.execute(report_heard)

    body[:] = [conversation_view(store, voice, start, stop)]


async def _history(session: PageSession, body: pn.Column) -> None:
    context = web_context()
    store = HistoryStore()
    async with session.as_user() as conn:
        await store.load(conn, session.user_id)

    async def on_select() -> None:
        async with session.as_user() as conn:
            await store.load_turns(conn)

    async def on_export(fmt: Format) -> None:
        assert context.settings.storage_url is not None
        async with context.page_connection() as conn:
            try:
                await export_conversations(
                    conn,
                    ObjectStore(context.settings.storage_url),
                    session.claims,
                    fmt=fmt,
                    conversation_id=UUID(store.selected) if store.selected else None,
                )
            except Exception:  # the export row records why; the list below shows it
                log.exception("export failed")
        async with session.as_user() as conn:
            await store.load_exports(conn)

    body[:] = [history_view(store, on_select, on_export)]


async def _account(session: PageSession) -> AccountStore:
    store = AccountStore()
    async with session.as_user() as conn:
        await store.load(conn)
    return store


def _account_actions(session: PageSession, store: AccountStore) -> Callable[..., Any]:
    context = web_context()

    async def act(name: str, **kwargs: Any) -> None:
        store.param.update(message="", error="")
        try:
            if name == "password":
                await _change_password(session, kwargs["current"], kwargs["password"])
                store.message = "Password changed. Your other sessions have been signed out."
                return
            async with session.as_user() as conn:
                if name == "name":
                    await store.save_name(conn)
                elif name == "settings":
                    await store.save_settings(conn)
                elif name == "avatar":
                    if not kwargs["data"]:
                        raise ValueError("choose an image file first")
                    assert context.settings.storage_url is not None
                    await store.upload_avatar(
                        conn,
                        ObjectStore(context.settings.storage_url),
                        session.user_id,
                        kwargs["data"],
                        kwargs["mime_type"] or "",
                    )
            store.message = "Saved."
        except (ValueError, DataError, AuthFailure) as exc:
            store.error = str(exc)

    return act


async def _change_password(session: PageSession, current: str, password: str) -> None:
    context = web_context()
    cookie = session_cookie()
    async with context.connection() as conn:
        tokens = await context.sessions.tokens(conn, cookie)
    if tokens is None:
        raise AuthFailure("your session has ended: sign in again")
    await context.auth.change_password(
        AuthSession(tokens[0], tokens[1], session.claims),
        current,
        password,
        client_key=_page_client(),
    )
    async with context.connection() as conn:
        await context.sessions.end_others(conn, session.user_id, keep=cookie)


async def _profile(session: PageSession, body: pn.Column) -> None:
    store = await _account(session)
    body[:] = [profile_view(store, _account_actions(session, store))]


async def _settings(session: PageSession, body: pn.Column) -> None:
    store = await _account(session)
    body[:] = [settings_view(store, _account_actions(session, store))]


async def _admin(session: PageSession, body: pn.Column) -> None:
    store = AdminStore()

    async def render() -> None:
        async with session.as_user() as conn:
            await store.load(conn)
        body[:] = [admin_view(store, act)]

    async def act(name: str, **kwargs: Any) -> None:
        message = ""
        try:
            async with session.as_user() as conn:
                if name == "select":
                    store.slug = kwargs["slug"]
                elif name == "save":
                    version = await store.save_version(conn, kwargs["body"], kwargs["notes"])
                    message = f"Saved version {version.version}."
                elif name == "activate":
                    await store.activate(conn, kwargs["number"])
                    message = f"Version {kwargs['number']} is active."
                elif name == "experiment":
                    experiment = await store.create_experiment(
                        conn, kwargs["name"].strip(), parse_arms(kwargs["arms"])
                    )
                    message = f"Experiment {experiment.name} created (draft)."
                elif name == "toggle":
                    repo = PromptsRepo(conn)
                    if kwargs["status"] == "running":
                        await repo.stop_experiment(kwargs["experiment_id"])
                    else:
                        await repo.start_experiment(kwargs["experiment_id"])
                elif name == "role":
                    await store.set_role(conn, kwargs["user_id"].strip(), kwargs["role"])
                    message = "Role changed."
        except (ValueError, DataError) as exc:
            message = f"Refused: {exc}"
        await render()
        store.message = message

    await render()


def routes() -> dict[str, Callable[[], pn.template.BaseTemplate]]:
    """URL path -> page factory."""
    return {
        "conversation": _session_page("conversation", _conversation),
        "history": _session_page("history", _history),
        "analytics": _session_page("analytics", _analytics),
        "profile": _session_page("profile", _profile),
        "settings": _session_page("settings", _settings),
        "admin": _session_page("admin", _admin),
    }


def serve(*, port: int, address: str = "127.0.0.1", **extra: Any) -> Any:
    """Start the server (blocking unless `threaded=True`)."""
    settings = web_context().settings
    if settings.cookie_secret is None:
        raise SystemExit(
            "no cookie secret: set WORKBENCH_COOKIE_SECRET (./dev up generates one locally)"
        )
    origins = [f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
    # Where people open it (a TLS proxy's https origin, a site URL): Bokeh's websocket
    # checks the page's origin against this list.
    public = urlsplit(settings.public_url)
    default_port = 443 if public.scheme == "https" else 80
    origins.append(f"{public.hostname}:{public.port or default_port}")
    return pn.serve(
        {
            **routes(),
            "": lambda: _template(
                "Home",
                pn.pane.Markdown(
                    "# Voice Workbench\n\n[Talk to the agent](/conversation) · "
                    "[History](/history) · [Analytics](/analytics)"
                ),
                pn.Column(pn.pane.Markdown(_nav({"user"}))),
            ),
        },
        port=port,
        address=address,
        show=False,
        title="Voice Workbench",
        websocket_origin=origins,
        auth_provider=WorkbenchAuthProvider(),
        extra_patterns=[*auth_routes(), *file_routes()],
        cookie_secret=settings.cookie_secret.get_secret_value(),
        xsrf_cookies=True,
        # Bokeh copies the request's cookies and headers into the session token it
        # embeds in the page, where page JavaScript can read it: keep the session
        # and XSRF cookies (and the raw Cookie header) out; `session_cookie()` reads
        # the session cookie server-side instead.
        exclude_cookies=[COOKIE_NAME, "_xsrf"],
        exclude_headers=["Cookie", "Authorization"],
        liveness=True,
        **extra,
    )
