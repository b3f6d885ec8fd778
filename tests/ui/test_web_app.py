"""The web app in a real browser: sign-in gate, analytics plots, role-gated eval results, logout."""

from __future__ import annotations

import re
import uuid

import httpx
import psycopg
import pytest
from playwright.sync_api import expect

from tests.support.personas import Persona, session_as
from tests.support.web import run_async
from tests.ui.conftest import Visit
from workbench.config import Settings
from workbench.db.connection import database_url
from workbench.db.models import EvalSample
from workbench.db.repositories import EvalsRepo
from workbench.stack.services import LocalStack

pytestmark = pytest.mark.ui


def test_pages_need_a_session(visit: Visit, base_url: str) -> None:
    visit.page.goto(f"{base_url}/analytics")
    expect(visit.page).to_have_url(re.compile(r"/login\?next=%2Fanalytics$"))
    expect(visit.page.get_by_role("heading", name="Sign in")).to_be_visible()
    visit.context.add_cookies([{"name": "vwb_session", "value": "forged", "url": base_url}])
    visit.page.goto(f"{base_url}/analytics")
    expect(visit.page).to_have_url(re.compile(r"/login"))
    visit.screenshot("login")


def test_forms_refuse_posts_without_the_xsrf_token(base_url: str) -> None:
    response = httpx.post(f"{base_url}/login", data={"email": "a@b.c", "password": "x" * 10})
    assert response.status_code == 403
    assert httpx.post(f"{base_url}/logout").status_code == 403


def test_sign_in_reports_a_dead_or_wrong_login_clearly(
    visit: Visit, base_url: str, web_settings: Settings
) -> None:
    visit.page.goto(f"{base_url}/login")
    visit.page.get_by_label("Email").fill("researcher@workbench.local")
    visit.page.get_by_label("Password").fill("not-the-password")
    visit.page.get_by_role("button", name="Sign in").click()
    alert = visit.page.get_by_role("alert")
    if LocalStack(web_settings).unavailable_reason("auth"):
        # No GoTrue on this machine: the page says so and sets no session.
        expect(alert).to_contain_text("Sign-in is unavailable right now")
    else:
        expect(alert).to_contain_text("Wrong email or password")
    assert not [c for c in visit.context.cookies() if c["name"] == "vwb_session"]
    visit.screenshot("login-error")


def _record_eval_run(settings: Settings, researcher: Persona) -> uuid.UUID:
    async def write() -> uuid.UUID:
        async with session_as(database_url(settings), researcher) as conn:
            repo = EvalsRepo(conn)
            run = await repo.open_run(
                run_id=uuid.uuid4(),
                task="asr",
                task_version="1",
                dataset_id="ui-test@000000000000",
                spec={"stt": {"name": "whisper-tiny-en-ct2"}},
                git_sha=None,
            )
            await repo.add_samples(
                run.id,
                [
                    EvalSample(
                        sample_id="clip-1",
                        reference="hello world",
                        hypothesis="hello word",
                        metrics={"wer": 0.5},
                    ),
                    EvalSample(
                        sample_id="clip-2",
                        reference="good morning",
                        hypothesis="good morning",
                        metrics={"wer": 0.0},
                    ),
                ],
            )
            await repo.finish_run(
                run.id,
                status="completed",
                metrics={"wer": 0.25, "wer_ci95": [0.0, 0.5], "samples": 2},
            )
            return run.id

    return run_async(write())


def test_researcher_sees_plots_and_drills_into_an_eval_run(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,
    web_settings: Settings,  # type: ignore[no-untyped-def]
) -> None:
    _record_eval_run(web_settings, people["researcher"])
    sign_in(visit, people["researcher"])
    visit.page.goto(f"{base_url}/analytics")
    expect(visit.page.get_by_text("Live conversations")).to_be_visible(timeout=30_000)
    expect(visit.page.get_by_text("Eval runs")).to_be_visible(timeout=30_000)
    expect(visit.page.locator("canvas").first).to_be_visible()
    assert visit.page.locator("canvas").count() >= 4  # latency, stages, activity, WER
    picker = visit.page.get_by_label("Show samples of run")
    run_label = picker.locator("option", has_text="ui-test@000000000000").first.inner_text()
    picker.select_option(label=run_label)
    expect(visit.page.get_by_text("clip-1")).to_be_visible(timeout=15_000)
    expect(visit.page.get_by_text("hello word")).to_be_visible()
    visit.screenshot("analytics-researcher")


def test_a_plain_user_gets_no_eval_results(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
) -> None:
    sign_in(visit, people["user"])
    visit.page.goto(f"{base_url}/analytics")
    expect(
        visit.page.get_by_text("Eval results are visible to researchers and admins.")
    ).to_be_visible(timeout=30_000)
    expect(visit.page.get_by_text("ui-test@000000000000")).to_have_count(0)
    visit.screenshot("analytics-user")


def test_logout_ends_the_session_everywhere(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,
    web_settings: Settings,  # type: ignore[no-untyped-def]
) -> None:
    cookie = sign_in(visit, people["user"])
    visit.page.goto(f"{base_url}/logout")
    visit.page.get_by_role("button", name="Sign out").click()
    expect(visit.page).to_have_url(re.compile(r"/login"))
    assert not [c for c in visit.context.cookies() if c["name"] == "vwb_session"]
    import hashlib

    with psycopg.connect(database_url(web_settings)) as conn:
        row = conn.execute(
            "select 1 from private.web_sessions where id_hash = %s",
            [hashlib.sha256(cookie.encode()).hexdigest()],
        ).fetchone()
    assert row is None
    # The old cookie value is dead even if replayed.
    visit.context.add_cookies([{"name": "vwb_session", "value": cookie, "url": base_url}])
    visit.page.goto(f"{base_url}/analytics")
    expect(visit.page).to_have_url(re.compile(r"/login"))
