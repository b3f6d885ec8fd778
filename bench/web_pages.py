"""Web app timings in a real browser (Debian Chromium, headless), printed as tables.

1. Analytics page load at 10^6 turns: a scratch database seeded like
   `db_throughput.py`, its own web server, a researcher's session; time from
   navigation to the page's first view drawn (the latency tab's two plots; the
   other tabs draw when opened), over several loads, each in a new browser
   profile (cold: nothing cached) and again in the same one (warm). The sign-in
   page, a plain HTML form the same server renders (no Panel session, no
   BokehJS), loaded the same way: what the server and browser take without them.
2. "Start conversation" click to the agent speaking, as the page shows it:
   the browser on a client host (network namespace) talks to a LiveKit
   server, an agent and a web server started for the run (as the UI test
   does); time from the click to the agent's state turning `speaking`
   (its greeting), over several calls. Needs root (namespaces).

    ./dev bench bench/web_pages.py [--turns 1000000] [--loads 5] [--calls 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from db_throughput import refresh_rollup, seed_million  # noqa: E402

from stack.instances import require_test_instance  # noqa: E402
from tests.support.databases import in_database, scratch_database  # noqa: E402
from tests.support.netns import client_host, namespaces_unavailable  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.web import signed_in_cookie  # noqa: E402
from workbench.auth.web_sessions import COOKIE_NAME  # noqa: E402
from workbench.config import get_settings  # noqa: E402
from workbench.db.connection import admin_database_url, database_url  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def analytics_loads(turns: int, loads: int) -> tuple[float, dict[str, list[dict[str, float]]]]:
    settings = get_settings()
    assert settings.supabase_jwt_secret is not None
    secret = settings.supabase_jwt_secret.get_secret_value()
    with scratch_database(
        admin_database_url(settings), with_migrations=True, prefix="vwb_web_bench"
    ) as dsn:
        user = uuid.uuid4()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "insert into auth.users (id, email, raw_user_meta_data) values (%s, 'bench@example.org', '{}')",
                [user],
            )
            # As the service: set_user_role trusts the session's database role, not claims.
            conn.execute("set role service_role")
            conn.execute("select public.set_user_role(%s, 'researcher')", [user])
            conn.execute("reset role")
        seeded_s = seed_million(dsn, user, turns)
        refresh_rollup(dsn)  # as the live service keeps it: the first load does not rebuild it
        cookie = asyncio.run(signed_in_cookie(dsn, secret, user_id=user, email="bench@example.org"))
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            # The web server refuses the owner's connection: it gets the app's role.
            "DATABASE_URL": in_database(database_url(settings), dsn),
            "WORKBENCH_PANEL_PORT": str(port),
            "WORKBENCH_PANEL_METRICS_PORT": str(free_port()),
        }
        with tempfile.TemporaryFile() as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "dashboards"], env=env, stdout=log, stderr=log, cwd=ROOT
            )
            try:
                deadline = time.monotonic() + 120
                while not _answers(f"http://127.0.0.1:{port}/liveness"):
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the bench's web server did not start")
                    time.sleep(0.3)
                timings: dict[str, list[dict[str, float]]] = {
                    kind: [] for kind in ("cold", "warm", "sign-in cold", "sign-in warm")
                }
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                    for _ in range(loads):
                        # Cold: a new browser profile (nothing cached); warm: the same
                        # researcher opening the page again, the scripts in their cache.
                        context = browser.new_context(viewport={"width": 1280, "height": 900})
                        context.add_cookies(
                            [
                                {
                                    "name": COOKIE_NAME,
                                    "value": cookie,
                                    "url": f"http://127.0.0.1:{port}",
                                }
                            ]
                        )
                        page = context.new_page()
                        for kind in ("cold", "warm"):
                            try:
                                timings[kind].append(_load_analytics(page, port))
                            except Exception:  # show why the server did not deliver the page
                                log.seek(0)
                                print(log.read().decode(errors="replace")[-3000:], file=sys.stderr)
                                raise
                        context.close()
                        context = browser.new_context(viewport={"width": 1280, "height": 900})
                        page = context.new_page()
                        for kind in ("sign-in cold", "sign-in warm"):
                            timings[kind].append(_load_sign_in(page, port))
                        context.close()
                    browser.close()
            finally:
                server.terminate()
                server.wait(timeout=20)
    return seeded_s, timings


def _load_analytics(page: Any, port: int) -> dict[str, float]:
    """The Analytics page's first view: the latency tab's two plots (plot titles are
    drawn on canvas; the section heading is DOM text)."""

    def drawn() -> None:
        page.get_by_role("heading", name="Live conversations").wait_for(timeout=120_000)
        while page.locator("canvas").count() < 2:
            page.wait_for_timeout(20)

    return _timed_load(page, f"http://127.0.0.1:{port}/analytics", drawn)


def _load_sign_in(page: Any, port: int) -> dict[str, float]:
    """The sign-in page's first view: its button."""

    def drawn() -> None:
        page.get_by_role("button", name="Sign in").wait_for(timeout=120_000)

    return _timed_load(page, f"http://127.0.0.1:{port}/login", drawn)


def _timed_load(page: Any, url: str, drawn: Callable[[], None]) -> dict[str, float]:
    """Seconds from navigation to: the page shell received (the server has built the
    template), its scripts run (DOMContentLoaded), and the first view drawn (`drawn`
    returns)."""
    t0 = time.perf_counter()
    page.goto(url)
    drawn()
    drawn_s = time.perf_counter() - t0
    navigation = page.evaluate(
        "(() => { const n = performance.getEntriesByType('navigation')[0];"
        " return [n.responseEnd, n.domContentLoadedEventEnd]; })()"
    )
    return {"shell": navigation[0] / 1000, "scripts": navigation[1] / 1000, "drawn": drawn_s}


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def call_setup_times(calls: int) -> list[float]:
    from tests.support.personas import create_user
    from tests.ui.test_voice_in_browser import Servers, _launch
    from workbench.audio import wav_bytes

    settings = get_settings()
    assert settings.supabase_jwt_secret is not None
    secret = settings.supabase_jwt_secret.get_secret_value()
    with psycopg.connect(admin_database_url(settings), autocommit=True) as conn:
        person = create_user(conn, name="bench-caller", role="user", jwt_secret=secret)
    assert person.id is not None
    assert person.claims.email is not None
    timings: list[float] = []
    with client_host() as hosts, tempfile.TemporaryDirectory() as tmp:
        servers = Servers(hosts, settings, Path(tmp))
        try:
            servers.start()
            cookie = asyncio.run(
                signed_in_cookie(
                    database_url(settings), secret, user_id=person.id, email=person.claims.email
                )
            )
            # A quiet microphone: speech would interrupt the greeting being timed.
            quiet = Path(tmp) / "quiet.wav"
            quiet.write_bytes(wav_bytes(np.zeros(16_000 * 5, dtype=np.float32), 16_000))
            with sync_playwright() as playwright:
                # As the browser test launches it: on the client host, trusting the run's
                # CA, the site's name mapped to the server host.
                browser = _launch(playwright, servers, quiet)
                for _ in range(calls):
                    context = browser.new_context()
                    context.add_cookies(
                        [{"name": COOKIE_NAME, "value": cookie, "url": servers.web_url}]
                    )
                    page = context.new_page()
                    page.goto(f"{servers.web_url}/conversation")
                    start = page.get_by_role("button", name="Start conversation")
                    start.wait_for(timeout=60_000)
                    t0 = time.perf_counter()
                    start.click()
                    page.get_by_text(re.compile(r"Agent: speaking")).wait_for(timeout=120_000)
                    timings.append(time.perf_counter() - t0)
                    page.get_by_role("button", name="Stop").click()
                    page.get_by_text("Connection: disconnected").wait_for(timeout=30_000)
                    context.close()
                browser.close()
        finally:
            servers.stop()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=1_000_000)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    require_test_instance(get_settings(), "bench/web_pages.py")

    seeded_s, loads = analytics_loads(args.turns, args.loads)
    print(
        f"\nAnalytics page, researcher, {args.turns:,} turns (seeded in {seeded_s:.0f} s), {args.loads} loads each\n"
    )
    print(
        f"| {'seconds from navigation':<24} | {'shell p50':>9} | {'scripts run p50':>15}"
        f" | {'first view drawn p50':>20} | {'p95':>5} |"
    )
    print(f"|{'-' * 26}|{'-' * 11}|{'-' * 17}|{'-' * 22}|{'-' * 7}|")
    for kind, label in (
        ("cold", "new browser profile"),
        ("warm", "again, scripts cached"),
        ("sign-in cold", "sign-in page, new profile"),
        ("sign-in warm", "sign-in page, cached"),
    ):
        column = {key: [load[key] for load in loads[kind]] for key in ("shell", "scripts", "drawn")}
        print(
            f"| {label:<24} | {pct(column['shell'], 0.5):>9.2f} | {pct(column['scripts'], 0.5):>15.2f}"
            f" | {pct(column['drawn'], 0.5):>20.2f} | {pct(column['drawn'], 0.95):>5.2f} |"
        )

    reason = namespaces_unavailable() or ("--calls 0" if args.calls < 1 else None)
    if reason:
        print(f"\nStart-to-agent-audio skipped: {reason}")
        return 0
    calls = call_setup_times(args.calls)
    print(f"\nConversation page, {len(calls)} calls through LiveKit over a veth link\n")
    print(f"| {'measure':<40} | {'p50 s':>7} | {'max s':>7} |")
    print(f"|{'-' * 42}|{'-' * 9}|{'-' * 9}|")
    print(
        f"| {'click Start -> agent speaking (greeting)':<40} | {pct(calls, 0.5):>7.2f} | {max(calls):>7.2f} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
