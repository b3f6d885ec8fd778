"""The Panel server: pages behind Supabase Auth sessions, served at one URL by `./dev up`.

    python -m dashboards            # serves on 127.0.0.1:<WORKBENCH_PANEL_PORT> (5006)

Pages are built per browser session; each resolves the session cookie to the
user's verified claims and queries under that user's RLS identity. Static
resources are served by this server (no CDN: no request leaves the machine).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import panel as pn

from dashboards.auth_pages import WorkbenchAuthProvider, auth_routes
from dashboards.components.voice_room import VoiceRoom
from dashboards.context import web_context
from dashboards.pages.analytics import AnalyticsStore, analytics_view
from dashboards.pages.conversation import ConversationStore, conversation_view
from workbench.auth.web_sessions import COOKIE_NAME, WebSession

# Loaded up front: a page that adds a Tabulator later would find its JS missing.
pn.extension("tabulator", notifications=True)

PAGES = {"conversation": "Conversation", "analytics": "Analytics"}


def _template(title: str, body: pn.viewable.Viewable) -> pn.template.BaseTemplate:
    template = pn.template.BootstrapTemplate(
        title=f"Voice Workbench · {title}", header_background="#2b59c3"
    )
    links = "\n".join(f"- [{name}](/{path})" for path, name in PAGES.items())
    template.sidebar.append(pn.pane.Markdown(f"{links}\n\n---\n\n[Sign out](/logout)"))
    template.main.append(body)
    return template


def _session_page(
    title: str, build: Callable[[WebSession, pn.Column], Any]
) -> Callable[[], pn.template.BaseTemplate]:
    """A page whose body is filled once the browser session is resolved (on load, off the render path)."""

    def page() -> pn.template.BaseTemplate:
        body = pn.Column(
            pn.indicators.LoadingSpinner(value=True, size=40, name="Loading…"),
            sizing_mode="stretch_width",
        )

        async def fill() -> None:
            session = await web_context().resolve(pn.state.cookies.get(COOKIE_NAME))
            if session is None:
                body[:] = [pn.pane.Markdown("Your session has ended. [Sign in again](/login).")]
                return
            await build(session, body)

        pn.state.onload(fill)
        return _template(title, body)

    return page


async def _analytics(session: WebSession, body: pn.Column) -> None:
    context = web_context()
    store = AnalyticsStore()

    async def reload() -> None:
        try:
            async with context.as_user(session) as conn:
                await store.load(conn)
        except ValueError as exc:  # e.g. an inverted date range
            if pn.state.notifications is not None:
                pn.state.notifications.error(str(exc))

    async def load_samples(_event: Any = None) -> None:
        async with context.as_user(session) as conn:
            await store.load_samples(conn)

    await reload()
    store.param.watch(lambda event: pn.state.execute(load_samples), "selected_run")
    body[:] = [analytics_view(store, reload)]


async def _conversation(session: WebSession, body: pn.Column) -> None:
    context = web_context()
    store = ConversationStore()
    voice = VoiceRoom()
    async with context.as_user(session) as conn:
        await store.load(conn)

    async def start() -> None:
        await store.start(context.settings, session, voice)

    body[:] = [conversation_view(store, voice, start, lambda: store.stop(voice))]


def routes() -> dict[str, Callable[[], pn.template.BaseTemplate]]:
    """URL path -> page factory."""
    return {
        "conversation": _session_page("Conversation", _conversation),
        "analytics": _session_page("Analytics", _analytics),
    }


def serve(*, port: int, address: str = "127.0.0.1", **extra: Any) -> Any:
    """Start the server (blocking unless `threaded=True`)."""
    settings = web_context().settings
    if settings.cookie_secret is None:
        raise SystemExit(
            "no cookie secret: set WORKBENCH_COOKIE_SECRET (./dev up generates one locally)"
        )
    origins = [f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
    return pn.serve(
        {
            **routes(),
            "": lambda: _template(
                "Home",
                pn.pane.Markdown(
                    "# Voice Workbench\n\n[Talk to the agent](/conversation) · "
                    "[Analytics](/analytics)"
                ),
            ),
        },
        port=port,
        address=address,
        show=False,
        title="Voice Workbench",
        websocket_origin=origins,
        auth_provider=WorkbenchAuthProvider(),
        extra_patterns=auth_routes(),
        cookie_secret=settings.cookie_secret.get_secret_value(),
        xsrf_cookies=True,
        liveness=True,
        **extra,
    )
