"""The Panel server: pages behind Supabase Auth sessions, served at one URL by `./dev up`.

    python -m dashboards            # serves on 127.0.0.1:<WORKBENCH_PANEL_PORT> (5006)

This module only routes and guards roles: each page is a `pn.viewable.Viewer`
in `dashboards/pages/` that owns its state, its actions and its repository
calls. Pages are built per browser session; each resolves the session cookie
to the user's verified claims and queries under that user's RLS identity.
Static resources are served by this server (no CDN: no request leaves the machine).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

import panel as pn
from panel.io.state import set_curdoc

from dashboards.auth_pages import WorkbenchAuthProvider, auth_routes
from dashboards.components.narrow_sidebar import FoldSidebarWhenNarrow
from dashboards.context import web_context
from dashboards.files import file_routes
from dashboards.metrics import record_request, serve_metrics
from dashboards.pages.account import ProfilePage, SettingsPage
from dashboards.pages.admin import ROLES, AdminPage
from dashboards.pages.analytics import AnalyticsPage
from dashboards.pages.conversation import ConversationPage
from dashboards.pages.history import HistoryPage
from dashboards.pages.home import HomePage
from dashboards.session import ENDED_MARKDOWN, PageSession, session_cookie
from workbench.auth.web_sessions import COOKIE_NAME
from workbench.db.models import AppRole, UserSettings
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
    role = max(held, key=ROLES.index)
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


def _session_page(path: str) -> Callable[[], pn.template.BaseTemplate]:
    """A page whose body is filled as soon as its document exists, before the browser asks for it.

    The fill runs as the document's first next-tick callback: Bokeh runs it under
    the document's lock, so the browser's first pull of the document (once its
    scripts have loaded) waits for it and receives the filled page. The database
    work and the model building overlap the browser's script loading instead of
    following a second round trip after the page has drawn.

    Navigation shows only the pages the user's role may open; a page above the
    role is refused here, and its data would be refused by RLS anyway.
    """
    title, needs, page_class = PAGES[path]

    def page() -> pn.template.BaseTemplate:
        body = pn.Column(
            pn.indicators.LoadingSpinner(value=True, size=40, name="Loading…"),
            sizing_mode="stretch_width",
        )
        nav = pn.Column()
        doc = pn.state.curdoc
        assert doc is not None, "pages are built by the server, in a session's document"
        theme_setting: list[str | None] = []  # the user's setting, once fill has read it

        async def fill() -> None:
            with set_curdoc(doc):
                resolved = await web_context().resolve(session_cookie())
                if resolved is None:
                    body[:] = [pn.pane.Markdown(ENDED_MARKDOWN)]
                    return
                session = PageSession(resolved, body)
                async with session.as_user() as conn:
                    profiles = ProfilesRepo(conn)
                    held = await profiles.roles_held()  # the ranking lives in SQL
                    ui = UserSettings.model_validate((await profiles.mine()).settings).ui
                theme_setting.append(ui.theme if ui else None)
                who = resolved.claims.email or "signed in"
                nav[:] = [
                    pn.pane.HTML(
                        _nav(held, path, who, _theme_in_url()), sizing_mode="stretch_width"
                    ),
                    FoldSidebarWhenNarrow(height=0, margin=0),
                ]
                if needs not in held:
                    body[:] = [pn.pane.Alert(f"{title} is for {needs}s only.", alert_type="danger")]
                    return
                view = page_class(session)
                await view.load()
                # One recompute of the document's model references for the whole body, not
                # one per model tree Panel adds (a third of the build time on Analytics).
                with doc.models.freeze():
                    body[:] = [view]
                session.watch()

        def match_theme() -> None:
            """Once the browser has said what it prefers: rebuild the page in the user's theme
            if it was built in another (Panel picks the theme when it builds a page)."""
            if not theme_setting:
                return
            browser = pn.state.browser_info
            theme = page_theme(theme_setting[0], browser.dark_mode if browser else None)
            location = pn.state.location
            if theme != _theme_in_url() and location is not None:
                location.reload = True
                location.search = f"?theme={theme}"

        doc.add_next_tick_callback(fill)
        pn.state.onload(match_theme)
        return _template(title, body, nav)

    return page


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
        log_function=record_request,  # each request counted for Prometheus, then logged
        **extra,
    )
