"""The Panel server: pages behind Supabase Auth sessions, served at one URL by `./dev up`.

    python -m dashboards            # serves on 127.0.0.1:<WORKBENCH_PANEL_PORT> (5006)

This module only routes and guards roles: each page is a `pn.viewable.Viewer`
in `dashboards/pages/` that owns its state, its actions and its repository
calls. Pages are built per browser session; each resolves the session cookie
to the user's verified claims and queries under that user's RLS identity.
Static resources are served by this server (no CDN: no request leaves the machine).
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import panel as pn
from panel.io.state import set_curdoc
from tornado.web import RequestHandler

from dashboards import security_headers
from dashboards.auth_pages import WorkbenchAuthProvider, auth_routes
from dashboards.components.narrow_sidebar import FoldSidebarWhenNarrow
from dashboards.context import SessionEnded, web_context
from dashboards.files import file_routes
from dashboards.metrics import record_request, serve_metrics
from dashboards.page_sessions import bokeh_secret_key
from dashboards.pages.account import ProfilePage, SettingsPage
from dashboards.pages.admin import AdminPage
from dashboards.pages.analytics import AnalyticsPage
from dashboards.pages.conversation import ConversationPage
from dashboards.pages.history import HistoryPage
from dashboards.pages.home import HomePage
from dashboards.session import ENDED_MARKDOWN, PageSession, session_cookie
from workbench.auth.web_sessions import COOKIE_NAME
from workbench.db.models import APP_ROLES, AppRole, UserSettings
from workbench.db.repositories import ProfilesRepo

# Loaded up front: a page that adds a Tabulator later would find its JS missing.
pn.extension("tabulator", notifications=True)

# path -> (title, lowest role that sees it, the page's Viewer: built with the session, then loaded)
PAGES: dict[str, tuple[str, AppRole, Callable[[PageSession], Any]]] = {
    "": ("Home", "user", HomePage),
    "conversation": ("Conversation", "user", ConversationPage),
    "history": ("History", "user", HistoryPage),
    "analytics": ("Analytics", "user", AnalyticsPage),
    "profile": ("Profile", "user", ProfilePage),
    "settings": ("Settings", "user", SettingsPage),
    "admin": ("Admin", "admin", AdminPage),
}


def _template(title: str, body: pn.viewable.Viewable, nav: pn.Column) -> pn.template.BaseTemplate:
    template = pn.template.BootstrapTemplate(
        title=f"Voice Workbench · {title}",
        header_background="#2b59c3",
        sidebar_width=220,  # the nav is short; a narrow screen keeps room for the page
    )
    template.sidebar.append(nav)
    template.main.append(body)
    return template


NAV_STYLE = """<style>
nav.wb-nav a{display:block;padding:.45rem .8rem;border-radius:.4rem;color:%(text)s;
  text-decoration:none;margin:.1rem 0}
nav.wb-nav a:hover{background:%(hover)s}
nav.wb-nav a[aria-current=page]{background:#2b59c3;color:#fff;font-weight:600}
.wb-who{font-size:.85rem;color:%(muted)s;margin:.2rem .8rem .6rem}
.wb-role{display:inline-block;padding:0 .45rem;border-radius:.6rem;background:#e0e7ff;
  color:#1e3a8a;font-size:.75rem;margin-left:.3rem}
</style>"""
NAV_COLOURS = {
    "default": {"text": "#1f2937", "hover": "#eef2ff", "muted": "#4b5563"},
    "dark": {"text": "#e5e7eb", "hover": "#374151", "muted": "#9ca3af"},
}
Theme = Literal["default", "dark"]  # Panel's theme names


def page_theme(setting: str | None, browser_prefers_dark: bool | None) -> Theme:
    """Panel's theme for a user's theme setting ("system": what the browser prefers)."""
    dark = setting == "dark" or (setting == "system" and bool(browser_prefers_dark))
    return "dark" if dark else "default"


def _nav(held: set[AppRole], current: str, who: str, theme: Theme = "default") -> str:
    """The pages the user's role may open, the current one marked; who is signed in, as what.

    Links carry the theme, so the next page is built in it at once.
    """
    role = max(held, key=APP_ROLES.index)
    current_mark = ' aria-current="page"'
    query = "?theme=dark" if theme == "dark" else ""
    links = "".join(
        f'<a href="/{path}{query}"{current_mark if path == current else ""}>{title}</a>'
        for path, (title, needs, _page) in PAGES.items()
        if needs in held
    )
    return (
        f"{NAV_STYLE % NAV_COLOURS[theme]}"
        f'<div class="wb-who">{html.escape(who)}<span class="wb-role">{role}</span></div>'
        f'<nav class="wb-nav" aria-label="Pages">{links}<hr><a href="/logout">Sign out</a></nav>'
    )


def _theme_in_url() -> Theme:
    """The theme this page was built in (Panel reads `?theme=` when it builds a page)."""
    args = pn.state.session_args or {}
    return "dark" if args.get("theme", [b""])[0] == b"dark" else "default"


@dataclass
class _Prepared:
    """What a page needs from the database, fetched before the browser has loaded it."""

    session: PageSession
    who: str
    held: set[AppRole]
    theme_setting: str | None
    view: Any | None  # the page's Viewer with its data loaded; None: the role may not open it


def _session_page(path: str) -> Callable[[], pn.template.BaseTemplate]:
    """A page whose data is fetched as soon as its document exists and shown once the browser has it.

    The queries start when the document is created, so they overlap the
    browser's script loading; the page's models are added once the browser has
    loaded the document (Panel's `onload`). Earlier the models were added in a
    next-tick callback holding the document's lock, so the browser's first pull
    would wait for them: when the queries outlasted the script loading, the
    browser's pull was queued first and the changes reached it as patches while it
    was still building the document, which dropped them, and the page stayed on
    its spinner (the intermittent "Analytics stays on Loading…" of CI).

    A page that cannot be built within FILL_DEADLINE_S says why, with a retry
    button. Navigation shows only the pages the user's role may open; a page above
    the role is refused here, and its data would be refused by RLS anyway.
    """
    title, needs, page_class = PAGES[path]

    def page() -> pn.template.BaseTemplate:
        body = pn.Column(_loading(), sizing_mode="stretch_width")
        nav = pn.Column()
        doc = pn.state.curdoc
        assert doc is not None, "pages are built by the server, in a session's document"
        cookie = session_cookie()

        async def prepare() -> _Prepared | None:
            """The page's data (no change to the document: the browser may not have it yet)."""
            with set_curdoc(doc):
                resolved = await web_context().resolve(cookie)
                if resolved is None:
                    return None
                session = PageSession(resolved, body)
                async with session.as_user() as conn:
                    profiles = ProfilesRepo(conn)
                    held = await profiles.roles_held()  # the ranking lives in SQL
                    ui = UserSettings.model_validate((await profiles.mine()).settings).ui
                view = page_class(session) if needs in held else None
                if view is not None:
                    await view.load()
                who = resolved.claims.email or "signed in"
                return _Prepared(session, who, held, ui.theme if ui else None, view)

        preparing = [asyncio.ensure_future(prepare())]

        async def fill() -> None:
            """Show the prepared page (on load), or why it could not be prepared in time."""
            with set_curdoc(doc):
                started = time.monotonic()
                try:
                    async with asyncio.timeout(FILL_DEADLINE_S):
                        prepared = await preparing[0]
                except SessionEnded:
                    body[:] = [pn.pane.Markdown(ENDED_MARKDOWN)]
                    return
                except Exception as exc:  # any failure must reach the page
                    waited = time.monotonic() - started
                    log.exception("%s page failed to load after %.1f s", title, waited)
                    reason = (
                        f"it did not finish within {FILL_DEADLINE_S} s"
                        if isinstance(exc, TimeoutError)
                        else f"{type(exc).__name__}: {exc}"
                    )
                    body[:] = _load_failed(title, reason, retry)
                    return
                if prepared is None:
                    body[:] = [pn.pane.Markdown(ENDED_MARKDOWN)]
                    return
                if _rebuild_in_theme(prepared.theme_setting):
                    return
                nav[:] = [
                    pn.pane.HTML(
                        _nav(prepared.held, path, prepared.who, _theme_in_url()),
                        sizing_mode="stretch_width",
                    ),
                    FoldSidebarWhenNarrow(height=0, margin=0),
                ]
                if prepared.view is None:
                    body[:] = [pn.pane.Alert(f"{title} is for {needs}s only.", alert_type="danger")]
                    return
                # One recompute of the document's model references for the whole body, not
                # one per model tree Panel adds (a third of the build time on Analytics).
                with doc.models.freeze():
                    body[:] = [prepared.view]
                prepared.session.watch()

        def retry(_event: Any = None) -> None:
            body[:] = [_loading()]
            preparing[0] = asyncio.ensure_future(prepare())
            pn.state.execute(fill)

        pn.state.onload(fill)
        return _template(title, body, nav)

    return page


def _rebuild_in_theme(setting: str | None) -> bool:
    """Reload the page in the user's theme if it was built in another (Panel picks the
    theme when it builds a page); the browser has said by now what it prefers."""
    browser = pn.state.browser_info
    theme = page_theme(setting, browser.dark_mode if browser else None)
    location = pn.state.location
    if theme == _theme_in_url() or location is None:
        return False
    location.reload = True
    location.search = f"?theme={theme}"
    return True


# How long a page may take to build before it says it could not (its queries and its
# pool waits each give up after 30 s; a page should not sit on a spinner that long).
FILL_DEADLINE_S = 20

log = logging.getLogger(__name__)


def _loading() -> pn.indicators.LoadingSpinner:
    return pn.indicators.LoadingSpinner(value=True, size=40, name="Loading…")


def _load_failed(title: str, reason: str, retry: Callable[[Any], None]) -> list[Any]:
    """What a page shows instead of itself when it could not be built: why, and a retry."""
    button = pn.widgets.Button(name="Retry", button_type="primary")
    button.on_click(retry)
    message = f"**{html.escape(title)} could not load**: {html.escape(reason)}"
    return [pn.pane.Alert(message, alert_type="danger"), button]


class LivenessHandler(RequestHandler):
    """`/liveness`: the server answers (the stack's health check).

    Panel's own liveness endpoint builds the page named by `?endpoint=` for
    anyone who asks; this one builds nothing, so an anonymous request costs nothing.
    """

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.write({"live": True})


def routes() -> dict[str, Callable[[], pn.template.BaseTemplate]]:
    """URL path -> page factory."""
    return {path: _session_page(path) for path in PAGES}


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
    serve_metrics(settings.panel_metrics_port)
    return pn.serve(
        routes(),
        port=port,
        address=address,
        show=False,
        title="Voice Workbench",
        websocket_origin=origins,
        auth_provider=WorkbenchAuthProvider(),
        extra_patterns=[*auth_routes(), *file_routes(), (r"/liveness", LivenessHandler)],
        cookie_secret=settings.cookie_secret.get_secret_value(),
        xsrf_cookies=True,
        # Signed session ids and tokens: a client can neither choose an id nor forge a
        # token (dashboards/page_sessions.py keeps each session to its owner).
        sign_sessions=True,
        secret_key=bokeh_secret_key(settings.cookie_secret.get_secret_value()),
        generate_session_ids=True,
        # Bokeh copies the request's cookies and headers into the session token it
        # embeds in the page, where page JavaScript can read it: keep the session
        # and XSRF cookies (and the raw Cookie header) out; `session_cookie()` reads
        # the session cookie server-side instead.
        exclude_cookies=[COOKIE_NAME, "_xsrf"],
        exclude_headers=["Cookie", "Authorization"],
        # The _xsrf cookie as strict as the session cookie is: sent only by this site's
        # own pages, and only over HTTPS when the site is served so.
        xsrf_cookie_kwargs={
            "samesite": "Strict",
            "secure": settings.public_url.startswith("https://"),
        },
        transforms=security_headers.transforms(),
        log_function=record_request,  # each request counted for Prometheus, then logged
        **extra,
    )
