"""Playwright driving Debian's Chromium (headless) against the stack's web server.

Every request the page makes is recorded: one that leaves loopback fails the
test (no CDN, no telemetry). Screenshots go to the git-ignored `artifacts/ui/`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from stack.services import LocalStack
from tests.support.personas import Persona, create_user
from tests.support.web import run_async, signed_in_cookie
from workbench.auth.web_sessions import COOKIE_NAME
from workbench.config import REPO_ROOT, Settings, get_settings
from workbench.db.connection import admin_database_url, database_url

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "artifacts" / "ui"
LOCAL_PREFIXES = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")


@pytest.fixture(scope="session")
def web_settings() -> Settings:
    """Settings after `up` (the web server is part of the stack)."""
    get_settings.cache_clear()
    LocalStack(get_settings()).up()
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture(scope="session")
def base_url(web_settings: Settings) -> str:
    return f"http://127.0.0.1:{web_settings.panel_port}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: Playwright's sync API holds an event loop while it runs, which
    # would break the asyncio tests collected after this module.
    if not Path(CHROMIUM).exists():
        pytest.skip(
            "Debian's chromium is not installed (./dev test installs it: apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session", autouse=True)
def _no_request_history(web_settings: Settings) -> None:
    """Registration/reset limits count per client per hour, and every test browser is on
    loopback: start each run with the history a fresh machine has (none)."""
    with psycopg.connect(admin_database_url(web_settings), autocommit=True) as conn:
        conn.execute("delete from private.request_events")


@pytest.fixture(scope="session")
def people(web_settings: Settings) -> dict[str, Persona]:
    """A researcher and a plain user in the stack's database."""
    assert web_settings.supabase_jwt_secret is not None
    secret = web_settings.supabase_jwt_secret.get_secret_value()
    with psycopg.connect(admin_database_url(web_settings), autocommit=True) as conn:
        return {
            name: create_user(
                conn, name=f"ui-{name}", role=role, jwt_secret=secret, display_name=name.title()
            )
            for name, role in (("researcher", "researcher"), ("user", "user"), ("admin", "admin"))
        }


class Visit:
    """A browser context and page that fails on traffic leaving loopback."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.page: Page = context.new_page()
        self.outside: list[str] = []
        self.page.on("request", self._record)

    def _record(self, request: Any) -> None:
        if not request.url.startswith(LOCAL_PREFIXES):
            self.outside.append(request.url)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def visit(browser: Browser) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    visitor = Visit(context)
    yield visitor
    context.close()
    assert visitor.outside == [], f"requests left the machine: {visitor.outside}"


@pytest.fixture
def cookie_for(web_settings: Settings):  # type: ignore[no-untyped-def]
    """The session cookie value of a fresh server-side session for a persona (tests/support/web.py)."""
    assert web_settings.supabase_jwt_secret is not None

    def make(persona: Persona) -> str:
        assert persona.id is not None
        assert persona.claims.email is not None
        return run_async(
            signed_in_cookie(
                database_url(web_settings),
                web_settings.supabase_jwt_secret.get_secret_value(),  # type: ignore[union-attr]
                user_id=persona.id,
                email=persona.claims.email,
            )
        )

    return make


@pytest.fixture
def sign_in(cookie_for, base_url: str):  # type: ignore[no-untyped-def]
    """Put a server-side session for `persona` into the visit's browser (see tests/support/web.py)."""

    def do(visitor: Visit, persona: Persona) -> str:
        cookie: str = cookie_for(persona)
        visitor.context.add_cookies([{"name": COOKIE_NAME, "value": cookie, "url": base_url}])
        return cookie

    return do


def create_prompt(visitor: Visit, base_url: str, slug: str, body: str, *, title: str = "") -> None:
    """On the Admin page (signed in as an admin): a new prompt whose first version is active."""
    page = visitor.page
    page.goto(f"{base_url}/admin")
    expect(page.get_by_label("New prompt (slug)")).to_be_visible(timeout=30_000)
    page.get_by_label("New prompt (slug)").fill(slug)
    if title:
        page.get_by_label("Title").fill(title)
    first = page.get_by_label("First version")
    first.fill(body)
    first.press("Tab")
    page.get_by_role("button", name="Create prompt").click()
    expect(page.get_by_text(f"Prompt {slug} created; version 1 is active.")).to_be_visible(
        timeout=15_000
    )


def save_version(visitor: Visit, body: str, *, expect_number: int) -> None:
    """On the Admin page, the selected prompt: `body` saved as version `expect_number`."""
    editor = visitor.page.get_by_label("New version")
    editor.fill(body)
    editor.press("Tab")
    visitor.page.get_by_role("button", name="Save as new version").click()
    expect(visitor.page.get_by_text(f"Saved version {expect_number}.")).to_be_visible(
        timeout=15_000
    )
