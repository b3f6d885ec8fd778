"""An admin simulates a draft prompt version against the active one from the Admin page.

The page runs `python -m evals simulate` twice (the active version, then the
draft pinned with SLUG@VERSION) through the real stack and shows each measure's
difference with its scenario-level interval and a verdict. Slow (four real calls).
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from playwright.sync_api import expect

from tests.support.personas import Persona
from tests.ui.conftest import Visit, create_prompt, save_version
from workbench.config import Settings
from workbench.db.connection import admin_database_url

pytestmark = pytest.mark.ui


def test_admin_simulates_a_draft_before_activating_it(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
    web_settings: Settings,
) -> None:
    slug = f"sim-{uuid.uuid4().hex[:6]}"
    sign_in(visit, people["admin"])
    create_prompt(
        visit,
        base_url,
        slug,
        "You are a helpful assistant. Keep every answer to one or two short sentences.",
        title="Simulated before activation",
    )
    save_version(
        visit, "You are a helpful assistant. Answer in one short sentence.", expect_number=2
    )

    visit.page.get_by_label("Suite").select_option("quick")
    visit.page.get_by_label("Version to simulate").select_option(label="2")
    visit.page.get_by_role("button", name="Simulate against the active version").click()
    expect(visit.page.get_by_text("Calling the agent with version 1")).to_be_visible(timeout=15_000)
    expect(visit.page.get_by_text("Done: version 2 against the active version 1.")).to_be_visible(
        timeout=420_000
    )
    verdict = visit.page.locator("table", has_text="difference, 95% interval")
    expect(verdict).to_contain_text("pass rate")
    expect(verdict).to_contain_text("heard voice-to-voice")
    visit.screenshot("admin-draft-check")
    # Out of the other tests' way (a prompt listed before the seeded one).
    visit.page.get_by_role("button", name="Archive this prompt").click()
    expect(visit.page.get_by_text(f"Prompt {slug} archived.")).to_be_visible(timeout=15_000)

    with psycopg.connect(admin_database_url(web_settings)) as conn:
        versions = conn.execute(
            """select v.version, count(*) from public.simulated_calls s
               join public.conversations c on c.id = s.conversation_id
               join public.prompt_versions v on v.id = c.prompt_version_id
               join public.system_prompts p on p.id = v.prompt_id
               where p.slug = %s group by v.version order by v.version""",
            [slug],
        ).fetchall()
        runs = conn.execute(
            """select count(*) from public.eval_runs
               where task = 'simulation' and created_by = %s and spec ->> 'prompt' = %s""",
            [people["admin"].id, slug],
        ).fetchone()
        active = conn.execute(
            """select v.version from public.system_prompts p
               join public.prompt_versions v on v.id = p.active_version_id where p.slug = %s""",
            [slug],
        ).fetchone()
    assert versions == [(1, 2), (2, 2)]  # each version called by both scenarios
    assert runs == (2,)  # stored as the admin's eval runs
    assert active == (1,)  # simulating activates nothing
