"""An eval report shared through the workbench, opened in a real browser."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from evals.report import build_report
from tests.support.personas import Persona, session_as
from tests.support.reports import HOSTILE, asr_run
from tests.support.web import run_async
from tests.ui.conftest import ARTIFACTS, Visit
from workbench.config import Settings
from workbench.db.connection import database_url
from workbench.storage import ObjectStore

pytestmark = pytest.mark.ui


def _store_report(settings: Settings, researcher: Persona, name: str, page: str) -> str:
    async def put() -> str:
        assert settings.storage_url is not None
        assert researcher.id is not None
        async with session_as(database_url(settings), researcher) as conn:
            stored = await ObjectStore(settings.storage_url).put(
                conn,
                bucket="reports",
                owner_id=researcher.id,
                name=name,
                data=page.encode(),
                content_type="text/html",
            )
        return stored.path

    return run_async(put())


def test_a_stored_report_opens_from_analytics_with_its_plots_and_no_access_to_the_site(
    visit: Visit,
    browser,  # type: ignore[no-untyped-def]
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
    web_settings: Settings,
    tmp_path: Path,
) -> None:
    baseline = asr_run(tmp_path / "tiny-30s", errors=[0, 1, 0, 2, 0, 1])
    candidate = asr_run(tmp_path / "tiny-10s", errors=[1, 1, 0, 2, 1, 1])
    name = f"report-{uuid.uuid4().hex[:8]}.html"
    path = _store_report(
        web_settings, people["researcher"], name, build_report([baseline, candidate])
    )

    sign_in(visit, people["researcher"])
    visit.page.goto(f"{base_url}/analytics")
    visit.page.locator(".bk-tab", has_text="Evals").click(timeout=30_000)
    link = visit.page.get_by_role("link", name=name)
    expect(link).to_be_visible(timeout=30_000)
    with visit.page.expect_popup() as opened:
        link.click()
    report = opened.value
    expect(report.get_by_role("heading", name="tiny-10s against tiny-30s")).to_be_visible(
        timeout=15_000
    )
    expect(report.locator("canvas").first).to_be_attached(timeout=15_000)  # Bokeh drew
    expect(report.get_by_text(HOSTILE).first).to_be_visible()  # shown as text, not run
    visit.screenshot("analytics-reports")
    report.screenshot(path=str(ARTIFACTS / "eval-report.png"), full_page=True)
    # Served sandboxed: the report's scripts run in an origin of their own.
    reach = report.evaluate(
        "() => { try { return document.cookie } catch (e) { return 'blocked' } }"
    )
    assert reach == "blocked"

    # A plain user cannot open it, link or no link.
    other = Visit(browser.new_context())
    sign_in(other, people["user"])
    response = other.page.goto(f"{base_url}/files/reports/{path}")
    assert response is not None
    assert response.status == 404
    other.context.close()
