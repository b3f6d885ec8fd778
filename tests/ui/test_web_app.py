"""The web app in a real browser: sign-in gate, analytics plots, role-gated eval results, logout."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlencode

import httpx
import numpy as np
import psycopg
import pytest
from bokeh.util.token import get_token_payload
from playwright.sync_api import Browser, expect

from dashboards.context import LIVENESS_S
from dashboards.session import WATCH_S
from tests.support.images import PNG_1PX
from tests.support.personas import Persona, create_user, recorded_as, session_as
from tests.support.web import run_async
from tests.ui.conftest import Visit, create_prompt, save_version
from workbench.audio import wav_bytes
from workbench.config import Settings
from workbench.db.connection import admin_database_url, database_url, service_session
from workbench.db.models import EvalSample, TurnDraft, UiSettings, UserSettings
from workbench.db.repositories import ConversationsRepo, EvalsRepo, ProfilesRepo, PromptsRepo
from workbench.storage import ObjectStore

pytestmark = pytest.mark.ui


def save_settings(web_settings: Settings, person: Persona, settings: UserSettings) -> None:
    """Store `person`'s settings as the Settings page does (in their RLS session)."""

    async def save() -> None:
        async with session_as(database_url(web_settings), person) as conn:
            await ProfilesRepo(conn).update_mine(settings=settings)

    run_async(save())


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


# Each form's fields, and what a hostile or careless client might send in them.
FORMS = {
    "/login": ("email", "password"),
    "/register": ("display_name", "email", "password"),
    "/reset": ("email",),
    "/reset/complete?token_hash=made-up": ("password",),
    "/confirm?token_hash=made-up": (),
    "/logout": (),
}
HOSTILE_VALUES = ["", " ", "\x00", "a" * 100_000, "é" * 300, "<script>x</script>", "' or 1=1 --"]


def _hostile_bodies(fields: tuple[str, ...]) -> list[list[tuple[str, str]]]:
    """Each field missing, each hostile value in each field, and a field sent twice."""
    good = {"display_name": "Someone", "email": "hostile@example.org", "password": "a-password-1"}
    bodies: list[list[tuple[str, str]]] = [[]]
    for field in fields:
        bodies.append([(f, good[f]) for f in fields if f != field])
        for value in HOSTILE_VALUES:
            bodies.append([(f, value if f == field else good[f]) for f in fields])
        bodies.append([(f, good[f]) for f in fields] + [(field, "again@example.org")])
    return bodies


def test_hostile_and_missing_form_values_get_a_clear_4xx_never_a_5xx(
    base_url: str,
    people: dict[str, Persona],
    cookie_for,  # type: ignore[no-untyped-def]
) -> None:
    answers: list[tuple[str, str, int]] = []
    with httpx.Client(base_url=base_url, timeout=30) as browser:
        browser.get("/login")
        xsrf = browser.cookies["_xsrf"]
        for path, fields in FORMS.items():
            for body in _hostile_bodies(fields):
                response = browser.post(
                    path,
                    content=urlencode([("_xsrf", xsrf), *body]),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                answers.append((path, repr(body)[:80], response.status_code))
                if response.status_code == 400:  # said on the form, not a bare error page
                    assert 'role="alert"' in response.text, (path, body)
        # The pages, the file handler and the health check, signed in, with odd queries and paths.
        browser.cookies.set("vwb_session", cookie_for(people["user"]))
        for path in [
            "/history?theme=%00",
            "/analytics?theme=" + "x" * 5000,
            "/admin?x=%ff",
            "/files/audio/..%2F..%2Fetc%2Fpasswd",
            "/files/exports/%00",
            "/files/nope/x",
            "/liveness?endpoint=/admin",
        ]:
            answers.append((path, "GET", browser.get(path).status_code))
    server_errors = [a for a in answers if a[2] >= 500]
    assert server_errors == [], server_errors
    # The empty password that was a 500 is now a 400 on the form.
    assert (
        "/login",
        repr([("email", "hostile@example.org"), ("password", "")])[:80],
        400,
    ) in answers


def test_every_response_carries_the_security_headers(
    base_url: str,
    people: dict[str, Persona],
    cookie_for,  # type: ignore[no-untyped-def]
) -> None:
    """No page may be framed by another site (clickjacking), whichever handler answers."""
    cookie = cookie_for(people["user"])
    with httpx.Client(base_url=base_url) as browser:
        login = browser.get("/login")
        # The XSRF cookie goes only with this site's own requests.
        assert "samesite=strict" in login.headers["set-cookie"].lower()
        browser.cookies.set("vwb_session", cookie)
        history = browser.get("/history")
        static = re.search(r'src="/?(static/[^"]+\.js[^"]*)"', history.text)
        assert static, "the page loads no static script"
        for path in [
            "/login",
            "/register",
            "/history",
            "/files/audio/none",
            "/liveness",
            f"/{static[1]}",
        ]:
            response = browser.get(path)
            assert response.headers.get("x-frame-options") == "DENY", path
            assert "frame-ancestors 'none'" in response.headers.get(
                "content-security-policy", ""
            ), path
            assert response.headers.get("x-content-type-options") == "nosniff", path


def test_a_page_that_cannot_load_says_why_and_retries(
    visit: Visit, base_url: str, people: dict[str, Persona], sign_in, web_settings: Settings
) -> None:
    """A page whose data does not come says so with a retry button, not a spinner for ever."""
    sign_in(visit, people["user"])
    with psycopg.connect(admin_database_url(web_settings)) as blocker:
        # History reads the conversations; while this lock is held its query waits
        # until the lock timeout, then fails.
        blocker.execute("lock table public.conversations in access exclusive mode")
        visit.page.goto(f"{base_url}/history")
        expect(visit.page.get_by_text("History could not load")).to_be_visible(timeout=30_000)
        visit.screenshot("page-load-failed")
    visit.page.get_by_role("button", name="Retry").click()
    expect(visit.page.get_by_role("combobox", name="Conversation")).to_be_visible(timeout=30_000)
    expect(visit.page.get_by_text("History could not load")).not_to_be_visible()


def test_sign_in_reports_a_wrong_login_clearly(visit: Visit, base_url: str) -> None:
    visit.page.goto(f"{base_url}/login")
    visit.page.get_by_label("Email").fill("researcher@workbench.local")
    visit.page.get_by_label("Password").fill("not-the-password")
    visit.page.get_by_role("button", name="Sign in").click()
    expect(visit.page.get_by_role("alert")).to_contain_text("Wrong email or password")
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
    expect(visit.page.locator("canvas").nth(1)).to_be_visible()  # latency and its stages
    # The other tabs draw their plots when opened.
    visit.page.locator(".bk-tab", has_text="Activity and connection").click()
    expect(visit.page.locator("canvas").nth(2)).to_be_visible(timeout=15_000)
    visit.page.locator(".bk-tab", has_text="Evals").click()
    expect(visit.page.get_by_text("Eval runs")).to_be_visible(timeout=15_000)
    expect(visit.page.locator("canvas").last).to_be_visible()  # WER over time
    picker = visit.page.get_by_label("Show samples of run")
    run_label = picker.locator("option", has_text="ui-test@000000000000").first.inner_text()
    picker.select_option(label=run_label)
    expect(visit.page.get_by_text("clip-1")).to_be_visible(timeout=15_000)
    expect(visit.page.get_by_text("hello word")).to_be_visible()
    visit.screenshot("analytics-researcher")
    # Filter by a prompt version: the page reloads its views with the filter, without errors.
    visit.page.get_by_label("Prompt version").select_option(label="voice-assistant v1")
    visit.page.get_by_role("button", name="Apply filters").click()
    expect(visit.page.get_by_label("Prompt version")).to_have_value("voice-assistant v1")
    expect(visit.page.locator("canvas").first).to_be_visible()


def test_a_plain_user_gets_no_eval_results(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
) -> None:
    sign_in(visit, people["user"])
    visit.page.goto(f"{base_url}/analytics")
    visit.page.locator(".bk-tab", has_text="Evals").click(timeout=30_000)
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

    with psycopg.connect(admin_database_url(web_settings)) as conn:
        row = conn.execute(
            "select 1 from private.web_sessions where id_hash = %s",
            [hashlib.sha256(cookie.encode()).hexdigest()],
        ).fetchone()
    assert row is None
    # The old cookie value is dead even if replayed.
    visit.context.add_cookies([{"name": "vwb_session", "value": cookie, "url": base_url}])
    visit.page.goto(f"{base_url}/analytics")
    expect(visit.page).to_have_url(re.compile(r"/login"))


def _recorded_conversation(
    web_settings: Settings, owner: Persona, wav: bytes, *, room: str, said: str, answer: str | None
) -> uuid.UUID:
    """What the agent writes for one exchange: the user's audio in storage, their turn, its answer."""
    assert owner.id is not None
    assert web_settings.storage_url is not None
    store = ObjectStore(web_settings.storage_url)

    async def record() -> uuid.UUID:
        now = datetime.now(UTC)
        async with recorded_as(database_url(web_settings), owner) as conn:
            repo = ConversationsRepo(conn)
            conversation = await repo.start(room_name=room)
            stored = await store.put(
                conn,
                bucket="audio",
                owner_id=owner.id,  # type: ignore[arg-type]
                data=wav,
                name=f"{conversation.id}/user-0.wav",
                content_type="audio/wav",
            )
            turns = [
                TurnDraft(
                    conversation_id=conversation.id,
                    idx=0,
                    role="user",
                    text=said,
                    started_at=now,
                    ended_at=now,
                    audio_path=stored.path,
                )
            ]
            if answer is not None:
                turns.append(
                    TurnDraft(
                        conversation_id=conversation.id,
                        idx=1,
                        role="agent",
                        text=answer,
                        started_at=now,
                        ended_at=now,
                        v2v_s=1.2,
                    )
                )
            await repo.add_turns(turns)
            return conversation.id

    return run_async(record())


def test_history_plays_turn_audio_and_exports_a_download(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,
    web_settings: Settings,  # type: ignore[no-untyped-def]
) -> None:
    owner = people["user"]
    wav = wav_bytes(np.zeros(8000, dtype=np.float32), 16_000)
    conversation_id = _recorded_conversation(
        web_settings,
        owner,
        wav,
        room="history-ui",
        said="Play me some jazz",
        answer="Here is some jazz.",
    )
    sign_in(visit, owner)
    visit.page.goto(f"{base_url}/history")
    picker = visit.page.get_by_label("Conversation")
    expect(picker).to_be_visible(timeout=30_000)
    label = picker.locator("option", has_text=conversation_id.hex[:8]).inner_text()
    picker.select_option(label=label)
    expect(visit.page.get_by_text("Play me some jazz")).to_be_visible(timeout=15_000)
    audio_src = visit.page.locator("audio").first.get_attribute("src")
    assert audio_src is not None
    assert audio_src.startswith("/files/audio/")
    played = visit.context.request.get(f"{base_url}{audio_src}")
    assert played.status == 200
    assert played.body() == wav
    visit.page.get_by_role("button", name="Export CSV").click()
    link = visit.page.get_by_role("link", name="download").first
    expect(link).to_be_visible(timeout=30_000)
    href = link.get_attribute("href")
    assert href is not None
    download = visit.context.request.get(f"{base_url}{href}")
    assert download.status == 200
    assert "Here is some jazz." in download.text()
    assert download.headers["content-disposition"].startswith("attachment")
    visit.screenshot("history")
    # The file and the audio are the owner's: another signed-in user gets nothing.
    other = visit.context.browser.new_context()  # type: ignore[union-attr]
    try:
        intruder = Visit(other)
        sign_in(intruder, people["researcher"])
        assert other.request.get(f"{base_url}{href}").status == 404
        assert other.request.get(f"{base_url}/files/exports/../../secrets.json").status in (
            403,
            404,
        )
    finally:
        other.close()
    assert httpx.get(f"{base_url}{href}").status_code == 401  # no session at all


def test_a_researcher_finds_a_participants_simulated_call_in_history_plays_and_annotates_it(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,
    web_settings: Settings,  # type: ignore[no-untyped-def]
) -> None:
    """History for researchers: every participant's conversations, filtered to simulated callers;
    the chosen call's audio plays and its turns take the researcher's annotations."""
    wav = wav_bytes(np.zeros(8000, dtype=np.float32), 16_000)
    said = f"Simulated pizza order {uuid.uuid4().hex[:6]}"
    conversation_id = _recorded_conversation(
        web_settings, people["user"], wav, room="history-sim", said=said, answer="Two pizzas."
    )
    with psycopg.connect(admin_database_url(web_settings), autocommit=True) as conn:
        conn.execute(
            """insert into public.simulated_calls (conversation_id, run_id, suite, scenario, passed)
               values (%s, %s, 'smoke', 'pizza-order', false)""",
            [conversation_id, uuid.uuid4()],
        )
        conn.execute(
            "insert into public.annotation_tags (name) values ('off-topic') on conflict do nothing"
        )
    sign_in(visit, people["researcher"])
    page = visit.page
    page.goto(f"{base_url}/history")
    expect(page.get_by_label("Conversation")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="simulated", exact=True).click()
    page.get_by_placeholder("words said in the conversation").fill(said.split()[-1])
    page.get_by_placeholder("words said in the conversation").press("Enter")
    expect(page.get_by_text("Page 1 of 1 · 1 conversations")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("smoke/pizza-order").first).to_be_visible()
    picker = page.get_by_label("Conversation")
    label = picker.locator("option", has_text=conversation_id.hex[:8]).inner_text()
    picker.select_option(label=label)
    expect(page.get_by_text(said, exact=True)).to_be_visible(timeout=15_000)
    src = page.locator("audio").first.get_attribute("src")
    assert src is not None
    played = visit.context.request.get(f"{base_url}{src}")
    assert played.status == 200  # researchers may hear participants' audio
    assert played.body() == wav
    # A participant's transcript is theirs to correct: no correction form for the researcher.
    expect(page.get_by_text("Correct a transcript")).to_have_count(0)
    # The researcher annotates the agent's reply: a tag, a rating and a note.
    page.get_by_label("Annotate").select_option(label="Turn 1 (agent): Two pizzas.")
    page.get_by_role("button", name="2", exact=True).click()
    page.get_by_role("button", name="off-topic", exact=True).click()
    page.get_by_label("Note").fill("Took the order but asked nothing about toppings.")
    page.get_by_role("button", name="Save annotation").click()
    expect(page.get_by_text("Annotation saved.")).to_be_visible(timeout=15_000)
    expect(page.get_by_text(re.compile(r"Turn 1 by you: 2/5 off-topic"))).to_be_visible()
    with psycopg.connect(admin_database_url(web_settings), autocommit=True) as conn:
        stored = conn.execute(
            """select a.rating, a.note, a.author_id from public.annotations a
               where a.conversation_id = %s and a.turn_id is not null""",
            [conversation_id],
        ).fetchall()
    assert stored == [
        (2, "Took the order but asked nothing about toppings.", people["researcher"].id)
    ]
    visit.screenshot("history-researcher")
    # The owner, a plain user, browses only their own: no participant or caller filters.
    owner = Visit(visit.context.browser.new_context())  # type: ignore[union-attr]
    try:
        sign_in(owner, people["user"])
        owner.page.goto(f"{base_url}/history")
        expect(owner.page.get_by_label("Conversation")).to_be_visible(timeout=30_000)
        expect(owner.page.get_by_role("button", name="simulated", exact=True)).to_have_count(0)
        expect(owner.page.get_by_text(re.compile(r"Page 1 of \d+"))).to_be_visible()
    finally:
        owner.context.close()


def test_admin_page_is_refused_and_hidden_for_a_user(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
) -> None:
    sign_in(visit, people["user"])
    visit.page.goto(f"{base_url}/admin")
    expect(visit.page.get_by_text("Admin is for admins only.")).to_be_visible(timeout=30_000)
    expect(visit.page.get_by_role("link", name="Admin", exact=True)).to_have_count(0)
    expect(visit.page.get_by_role("link", name="History", exact=True)).to_be_visible()


def test_admin_edits_diffs_and_activates_a_prompt(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,
    web_settings: Settings,  # type: ignore[no-untyped-def]
) -> None:
    with psycopg.connect(admin_database_url(web_settings)) as conn:
        (was_active,) = conn.execute(
            "select active_version_id from public.system_prompts where slug = 'voice-assistant'"
        ).fetchone() or (None,)
    sign_in(visit, people["admin"])
    visit.page.goto(f"{base_url}/admin")
    editor = visit.page.get_by_label("New version")
    expect(editor).to_be_visible(timeout=30_000)
    prompt = visit.page.get_by_label("Prompt", exact=True)
    if prompt.input_value() != "voice-assistant":  # other tests may add prompts that sort first
        prompt.select_option("voice-assistant")
        # Its versions, not the first prompt's still on the page (the editor is drawn anew).
        expect(visit.page.get_by_role("grid").first).to_contain_text("baseline", timeout=15_000)
    marker = f"Always answer in rhyme ({uuid.uuid4().hex[:6]})."
    editor.fill(f"You are a poetic voice assistant. {marker}")
    visit.page.get_by_label("Notes").fill("rhyming test")
    visit.page.get_by_role("button", name="Save as new version").click()
    expect(visit.page.get_by_text(re.compile(r"Saved version \d+\."))).to_be_visible(timeout=15_000)
    saved = int(
        re.search(
            r"Saved version (\d+)",
            visit.page.get_by_text(re.compile(r"Saved version")).inner_text(),
        )[1]
    )  # type: ignore[index]
    # The side-by-side diff of the newest version against the first shows the new line.
    expect(visit.page.locator("table.diff")).to_be_visible()
    expect(visit.page.locator("table.diff")).to_contain_text("rhyme")
    picker = visit.page.get_by_label("Version to activate")
    picker.select_option(label=str(saved))
    visit.page.get_by_role("button", name="Activate").click()
    expect(visit.page.get_by_text(f"Version {saved} is active.")).to_be_visible(timeout=15_000)
    visit.screenshot("admin")
    with psycopg.connect(admin_database_url(web_settings)) as conn:
        body = conn.execute(
            """select v.body from public.system_prompts p join public.prompt_versions v on v.id = p.active_version_id
               where p.slug = 'voice-assistant'"""
        ).fetchone()
        # Leave the seed's prompt as it was for other tests: the version active before.
        conn.execute(
            "update public.system_prompts set active_version_id = %s where slug = 'voice-assistant'",
            [was_active],
        )
    assert body is not None
    assert marker in body[0]


def test_profile_avatar_upload_and_settings_validation(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    sign_in(visit, people["user"])
    visit.page.goto(f"{base_url}/profile")
    expect(visit.page.get_by_text("No avatar yet.")).to_be_visible(timeout=30_000)
    fake = tmp_path / "not-an-image.png"
    fake.write_bytes(b"this is text pretending to be a png")
    visit.page.locator("input[type=file]").set_input_files(str(fake))
    visit.page.get_by_role("button", name="Upload avatar").click()
    expect(visit.page.get_by_text("the data is not valid image/png")).to_be_visible(timeout=15_000)
    png = tmp_path / "avatar.png"
    png.write_bytes(PNG_1PX)
    visit.page.locator("input[type=file]").set_input_files(str(png))
    visit.page.get_by_role("button", name="Upload avatar").click()
    expect(visit.page.get_by_role("img", name="avatar")).to_be_visible(timeout=15_000)
    src = visit.page.get_by_role("img", name="avatar").get_attribute("src")
    assert visit.context.request.get(f"{base_url}{src}").body() == PNG_1PX
    visit.screenshot("profile")

    visit.page.goto(f"{base_url}/settings")
    language = visit.page.get_by_label("Language (e.g. en or en-US)")
    expect(language).to_be_visible(timeout=30_000)
    language.fill("English please")
    language.press("Enter")
    visit.page.get_by_role("button", name="Save settings").click()
    expect(
        visit.page.get_by_text(re.compile(r"language: String should match pattern"))
    ).to_be_visible(timeout=15_000)
    language.fill("en-GB")
    language.press("Enter")
    visit.page.get_by_role("button", name="Save settings").click()
    expect(visit.page.get_by_text("Saved.")).to_be_visible(timeout=15_000)
    visit.screenshot("settings")


def test_password_reset_pages_fail_clearly(visit: Visit, base_url: str) -> None:
    visit.page.goto(f"{base_url}/reset/complete")
    expect(visit.page.get_by_role("alert")).to_contain_text("This reset link is incomplete.")
    visit.page.goto(f"{base_url}/reset/complete?token_hash=not-a-real-token")
    visit.page.get_by_label("New password (8 characters or more)").fill("a-new-password-1")
    visit.page.get_by_role("button", name="Set password").click()
    expect(visit.page.get_by_role("alert")).not_to_be_empty()  # GoTrue refuses the made-up token
    assert not [c for c in visit.context.cookies() if c["name"] == "vwb_session"]
    visit.screenshot("reset")


def test_registration_does_not_reveal_which_addresses_have_accounts(base_url: str) -> None:
    """Registering a taken address answers exactly as registering a new one."""
    email = f"twice-{uuid.uuid4().hex[:8]}@example.org"
    answers = []
    for _ in range(2):  # the first creates the account, the second finds it taken
        with httpx.Client(base_url=base_url) as browser:
            browser.get("/register")
            response = browser.post(
                "/register",
                data={
                    "_xsrf": browser.cookies["_xsrf"],
                    "display_name": "Twice",
                    "email": email,
                    "password": "a-good-password-1",
                },
            )
            answers.append((response.status_code, response.headers.get("location")))
    assert answers[0] == answers[1] == (302, "/login?next=%2F&registered=1")


def test_the_page_token_carries_neither_the_session_nor_the_xsrf_cookie(
    base_url: str,
    people: dict[str, Persona],
    cookie_for,  # type: ignore[no-untyped-def]
) -> None:
    """Bokeh embeds a session token in the page, readable by its JavaScript: no secrets in it."""
    cookie = cookie_for(people["user"])
    with httpx.Client(base_url=base_url) as browser:
        browser.get("/login")  # an _xsrf cookie, as a browser would have
        browser.cookies.set("vwb_session", cookie)
        page = browser.get("/history")
    assert page.status_code == 200
    tokens = re.findall(r'"token":\s*"([^"]+)"', page.text) + re.findall(
        r"token=([A-Za-z0-9_\-\.]+)", page.text
    )
    assert tokens, "no session token in the page"
    for token in tokens:
        payload = get_token_payload(token)
        assert set(payload.get("cookies", {})) & {"vwb_session", "_xsrf"} == set(), payload
        headers = {name.lower() for name in payload.get("headers", {})}
        assert "cookie" not in headers
        assert cookie not in json.dumps(payload)


def test_an_open_page_notices_that_its_session_ended(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
    web_settings: Settings,
) -> None:
    """A sign-out, expiry or password change elsewhere reaches pages already open."""
    cookie = sign_in(visit, people["user"])
    visit.page.goto(f"{base_url}/settings")
    save = visit.page.get_by_role("button", name="Save settings")
    expect(save).to_be_visible(timeout=30_000)
    with psycopg.connect(admin_database_url(web_settings), autocommit=True) as conn:
        conn.execute(
            "delete from private.web_sessions where id_hash = %s",
            [hashlib.sha256(cookie.encode()).hexdigest()],
        )
    visit.page.wait_for_timeout(LIVENESS_S * 1000 + 500)  # the page's last check expires
    save.click()
    expect(visit.page.get_by_text("Your session has ended.")).to_be_visible(timeout=15_000)
    expect(save).to_be_hidden()


def test_an_idle_page_closes_when_its_session_ends_and_does_not_keep_it_alive(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
    web_settings: Settings,
) -> None:
    """Nobody touches the page: it still stops showing data once the session is gone."""
    cookie = sign_in(visit, people["user"])
    visit.page.goto(f"{base_url}/history")
    expect(visit.page.get_by_label("Conversation")).to_be_visible(timeout=30_000)
    id_hash = hashlib.sha256(cookie.encode()).hexdigest()
    with psycopg.connect(admin_database_url(web_settings), autocommit=True) as conn:
        (seen,) = conn.execute(
            "select last_seen_at from private.web_sessions where id_hash = %s", [id_hash]
        ).fetchone() or (None,)
    visit.page.wait_for_timeout(WATCH_S * 1000 + 2000)  # the page's watch ran at least once
    with psycopg.connect(admin_database_url(web_settings), autocommit=True) as conn:
        (still,) = conn.execute(
            "select last_seen_at from private.web_sessions where id_hash = %s", [id_hash]
        ).fetchone() or (None,)
        assert still == seen, "watching an idle page counted as use of the session"
        conn.execute("delete from private.web_sessions where id_hash = %s", [id_hash])
    expect(visit.page.get_by_text("Your session has ended.")).to_be_visible(
        timeout=(WATCH_S + 5) * 1000
    )
    expect(visit.page.get_by_label("Conversation")).to_be_hidden()


def test_a_transcript_corrected_in_history_becomes_the_asr_reference(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
    web_settings: Settings,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    """The owner fixes what the agent heard; the export scores ASR against the fix, stamped."""
    from evals.run_folder import RunFolder
    from evals.runner import run_task
    from evals.tasks.asr import AsrTask
    from workbench.models import ModelSpec
    from workbench_datasets.conversations import export_conversations
    from workbench_datasets.manifest import read_manifest, write_manifest

    owner = people["user"]
    assert owner.id is not None
    assert web_settings.storage_url is not None
    store = ObjectStore(web_settings.storage_url)
    wav = wav_bytes(0.1 * np.sin(np.arange(16_000) / 7).astype(np.float32), 16_000)

    conversation_id = _recorded_conversation(
        web_settings, owner, wav, room="correct-ui", said="book a table for tree", answer=None
    )
    sign_in(visit, owner)
    visit.page.goto(f"{base_url}/history")
    picker = visit.page.get_by_label("Conversation")
    expect(picker).to_be_visible(timeout=30_000)
    picker.select_option(
        label=picker.locator("option", has_text=conversation_id.hex[:8]).inner_text()
    )
    correction = visit.page.get_by_label("Corrected transcript")
    expect(correction).to_be_visible(timeout=15_000)
    correction.fill("book a table for three")
    correction.press("Tab")  # Bokeh takes the value on change
    visit.page.get_by_role("button", name="Save correction").click()
    expect(visit.page.get_by_text("Correction saved as the turn's reference.")).to_be_visible(
        timeout=15_000
    )
    expect(visit.page.get_by_text("human", exact=True).first).to_be_visible(timeout=15_000)
    visit.screenshot("history-correction")

    async def score() -> tuple[list[str], object]:
        async with session_as(database_url(web_settings), owner) as conn:
            (turn,) = await ConversationsRepo(conn).turns(conversation_id)
            export = await export_conversations(conn, store, tmp_path / "ds")
        ours = [r for r in export.rows if r.source == f"conversation:{conversation_id}"]
        manifest = read_manifest(write_manifest(tmp_path / "ds" / "manifest.jsonl", ours))
        fake = ModelSpec(name="fake-stt", kind="stt", backend="fake", model="fake")
        result = await run_task(
            AsrTask(spec=fake, manifest=manifest),
            folder=RunFolder(tmp_path / "run"),
            progress=False,
        )
        return [s.reference for s in result.samples], turn.reference_by

    references, corrected_by = run_async(score())
    assert references == ["book a table for three"]  # the corrected turn was scored, and by it
    assert corrected_by == owner.id


def test_settings_act_on_the_conversation_page(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
    web_settings: Settings,
) -> None:
    """Hiding the transcript and latency, and a language the stack cannot hear, show on the page."""
    person = people["researcher"]
    save_settings(
        web_settings,
        person,
        UserSettings(language="de", ui=UiSettings(show_transcript=False, show_latency=False)),
    )
    try:
        sign_in(visit, person)
        visit.page.goto(f"{base_url}/conversation")
        expect(visit.page.get_by_text("The transcript is hidden")).to_be_visible(timeout=30_000)
        expect(visit.page.get_by_text("recognises only 'en' speech")).to_be_visible()
        expect(visit.page.get_by_text("Transcript", exact=True)).to_have_count(0)
        expect(visit.page.get_by_text("Connection: ")).to_be_visible()
    finally:
        save_settings(web_settings, person, UserSettings())
    visit.page.goto(f"{base_url}/conversation")
    expect(visit.page.get_by_text("The transcript appears here as you talk.")).to_be_visible(
        timeout=30_000
    )
    expect(visit.page.get_by_text("recognises only")).to_have_count(0)


def test_admin_creates_a_prompt_and_archives_it(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
    web_settings: Settings,
) -> None:
    """A prompt of its own (not only versions of the seeded one), then out of every list."""
    slug = f"tutor-{uuid.uuid4().hex[:6]}"
    sign_in(visit, people["admin"])
    create_prompt(
        visit,
        base_url,
        slug,
        "You are a patient tutor. Ask one question at a time.",
        title="Patient tutor",
    )
    prompt = visit.page.get_by_label("Prompt", exact=True)
    expect(prompt).to_have_value(slug)
    visit.page.get_by_role("button", name="Archive this prompt").click()
    expect(visit.page.get_by_text(f"Prompt {slug} archived.")).to_be_visible(timeout=15_000)
    expect(prompt.locator("option", has_text=slug)).to_have_count(0)
    with psycopg.connect(admin_database_url(web_settings)) as conn:
        row = conn.execute(
            """select p.archived_at is not null, v.body from public.system_prompts p
               join public.prompt_versions v on v.id = p.active_version_id where p.slug = %s""",
            [slug],
        ).fetchone()
    assert row == (True, "You are a patient tutor. Ask one question at a time.")  # history kept


def test_admin_grows_the_annotation_vocabulary(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
    web_settings: Settings,
) -> None:
    """A tag added on the Admin page is stored; a malformed one is refused on the page."""
    name = f"barge-in-{uuid.uuid4().hex[:4]}"
    sign_in(visit, people["admin"])
    visit.page.goto(f"{base_url}/admin")
    visit.page.get_by_label("New tag").fill(name)
    visit.page.get_by_label("What it means").fill("the caller had to cut the agent short")
    visit.page.get_by_role("button", name="Add tag").click()
    expect(visit.page.get_by_text(f"Tag '{name}' added.")).to_be_visible(timeout=15_000)
    with psycopg.connect(admin_database_url(web_settings)) as conn:
        row = conn.execute(
            "select description from public.annotation_tags where name = %s", [name]
        ).fetchone()
    assert row == ("the caller had to cut the agent short",)
    visit.page.get_by_label("New tag").fill("Not a <tag>!")
    visit.page.get_by_role("button", name="Add tag").click()
    expect(
        visit.page.get_by_text(re.compile("Refused: .*annotation_tags_name_check"))
    ).to_be_visible(timeout=15_000)


def test_admin_runs_an_ab_experiment_and_promotes_a_user(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
    web_settings: Settings,
) -> None:
    """Through the page: a prompt with two versions, a weighted experiment started, its
    arm v2 promoted (its version active, the experiment stopped, in one step), and a user
    promoted to researcher (the database checks every step), each then on the audit trail."""
    slug = f"ab-{uuid.uuid4().hex[:6]}"
    name = f"brevity {uuid.uuid4().hex[:4]}"
    promoted = people["user"]
    sign_in(visit, people["admin"])
    create_prompt(visit, base_url, slug, "Answer at length.")
    save_version(visit, "Answer in one sentence.", expect_number=2)
    visit.page.get_by_label("Experiment name").fill(name)
    arms = visit.page.get_by_label("Arms (version:weight, ...)")
    arms.fill("1:3, 2:1")
    arms.press("Tab")
    visit.page.get_by_role("button", name="Create experiment").click()
    expect(visit.page.get_by_text(f"Experiment {name} created (draft).")).to_be_visible(
        timeout=15_000
    )
    visit.page.get_by_role("button", name=f"Start {name}").click()
    expect(visit.page.get_by_text(f"Experiment {name} started.")).to_be_visible(timeout=15_000)
    with psycopg.connect(admin_database_url(web_settings)) as conn:
        arms_stored = conn.execute(
            """select v.label, v.weight::float8, e.status from public.experiment_variants v
               join public.prompt_experiments e on e.id = v.experiment_id
               where e.name = %s order by v.label""",
            [name],
        ).fetchall()
    assert arms_stored == [("v1", 3.0, "running"), ("v2", 1.0, "running")]
    # New conversations get their arm as the agent assigns it; the page counts them.
    with psycopg.connect(admin_database_url(web_settings), autocommit=True) as conn:
        secret = web_settings.supabase_jwt_secret
        assert secret is not None
        owners = [
            create_user(conn, name=f"arm{i}", role="user", jwt_secret=secret.get_secret_value())
            for i in range(4)
        ]
    assigned = Counter(run_async(_start_conversations(web_settings, slug, owners)))
    assert sum(assigned.values()) == 4
    visit.page.reload()
    picker = visit.page.get_by_label("Prompt", exact=True)
    expect(picker).to_be_visible(timeout=30_000)
    picker.select_option(slug)
    for label, weight in (("v1", 3), ("v2", 1)):
        count = assigned.get(label, 0)
        shown = f"{label} (weight {weight}): {count} conversation{'s' if count != 1 else ''}"
        expect(visit.page.get_by_text(shown)).to_be_visible(timeout=15_000)
    visit.screenshot("admin-experiment-arms")
    # The admin decides: arm v2's version becomes the active one, and the experiment stops.
    visit.page.get_by_role("button", name="Promote v2").click()
    expect(
        visit.page.get_by_text(f"Arm v2 of {name} promoted: its version is active.")
    ).to_be_visible(timeout=15_000)
    with psycopg.connect(admin_database_url(web_settings)) as conn:
        active = conn.execute(
            """select v.version from public.system_prompts p
               join public.prompt_versions v on v.id = p.active_version_id where p.slug = %s""",
            [slug],
        ).fetchone()
    assert active == (2,)
    visit.page.get_by_label("User id").fill(str(promoted.id))
    visit.page.get_by_label("Role", exact=True).select_option("researcher")
    visit.page.get_by_role("button", name="Set role").click()
    expect(visit.page.get_by_text("Role changed.")).to_be_visible(timeout=15_000)
    # The audit trail (recorded by the database) shows what the admin just did.
    audit = visit.page.locator(".tabulator").filter(has_text="experiment started")
    for what in ("experiment started", "experiment stopped", "prompt activated", "role changed"):
        expect(audit.get_by_text(what, exact=True).first).to_be_visible(timeout=15_000)
    audit.scroll_into_view_if_needed()
    visit.screenshot("admin-audit-trail")
    visit.page.get_by_label("Who (name or id)").fill("nobody-by-this-name")
    visit.page.get_by_role("button", name="Show events").click()
    expect(visit.page.get_by_text("No events match")).to_be_visible(timeout=15_000)
    with psycopg.connect(admin_database_url(web_settings), autocommit=True) as conn:
        (role,) = conn.execute(
            "select role::text from public.profiles where id = %s", [promoted.id]
        ).fetchone() or (None,)
        status = conn.execute(
            "select status from public.prompt_experiments where name = %s", [name]
        ).fetchone()
        # Put things back for the other tests: the user is a plain user, the prompt archived.
        conn.execute("update public.profiles set role = 'user' where id = %s", [promoted.id])
        conn.execute("update public.system_prompts set archived_at = now() where slug = %s", [slug])
    assert role == "researcher"
    assert status == ("stopped",)


async def _start_conversations(
    web_settings: Settings, slug: str, owners: list[Persona]
) -> list[str]:
    """A conversation on prompt `slug` for each owner, as the agent starts one; their arms' labels."""
    labels = []
    async with await psycopg.AsyncConnection.connect(
        database_url(web_settings), autocommit=True
    ) as conn:
        for owner in owners:
            assert owner.id is not None
            async with service_session(conn, acting_for=owner.id):
                prompts = PromptsRepo(conn)
                prompt = await prompts.for_session(slug, user_id=owner.id, role="user")
                await ConversationsRepo(conn).start(
                    owner_id=owner.id, prompt=prompt, model_specs={"name": "cpu-small"}
                )
                assert prompt.experiment_id is not None, "no arm was assigned"
                arms = {v.id: v.label for v in await prompts.variants(prompt.experiment_id)}
            labels.append(arms[prompt.variant_id])  # type: ignore[index]
    return labels


def test_home_shows_recent_conversations_their_latency_and_one_start(
    visit: Visit,
    browser,  # type: ignore[no-untyped-def]
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
    web_settings: Settings,
) -> None:
    researcher = people["researcher"]
    wav = wav_bytes(np.zeros(8000, dtype=np.float32), 16_000)
    _recorded_conversation(
        web_settings,
        researcher,
        wav,
        room=f"home-{uuid.uuid4().hex[:6]}",
        said="Hi",
        answer="Hello.",
    )
    sign_in(visit, researcher)
    visit.page.goto(f"{base_url}/")
    expect(visit.page.get_by_text("Your recent conversations")).to_be_visible(timeout=30_000)
    recent = visit.page.locator(".tabulator").filter(has_text="voice to voice p50")
    expect(recent.get_by_text("1.20").first).to_be_visible(timeout=15_000)
    nav = visit.page.get_by_role("navigation", name="Pages")
    expect(nav.get_by_role("link", name="Home")).to_have_attribute("aria-current", "page")
    expect(nav.get_by_role("link", name="Admin")).to_have_count(0)  # above a researcher
    expect(visit.page.locator(".wb-role")).to_have_text("researcher")
    expect(visit.page.get_by_text("What new conversations get")).to_be_visible()
    expect(
        visit.page.get_by_text(re.compile(r"voice-assistant.*version \d+ active"))
    ).to_be_visible()
    visit.screenshot("home-researcher")
    visit.page.set_viewport_size({"width": 420, "height": 900})
    visit.screenshot("home-researcher-narrow")
    visit.page.get_by_role("button", name="Start a conversation").click()
    expect(visit.page).to_have_url(re.compile(r"/conversation$"))
    # The window is narrow now, so the navigation is folded away: read the link, not its role.
    expect(visit.page.locator('nav.wb-nav a[aria-current="page"]')).to_have_text(
        "Conversation", timeout=30_000
    )

    # Someone new: the empty state says what to do, and no prompts are shown to a user.
    with psycopg.connect(admin_database_url(web_settings), autocommit=True) as conn:
        assert web_settings.supabase_jwt_secret is not None
        newcomer = create_user(
            conn,
            name="ui-newcomer",
            role="user",
            jwt_secret=web_settings.supabase_jwt_secret.get_secret_value(),
        )
    fresh = Visit(browser.new_context(viewport={"width": 1280, "height": 900}))
    sign_in(fresh, newcomer)
    fresh.page.goto(f"{base_url}/")
    expect(fresh.page.get_by_text("No conversations yet")).to_be_visible(timeout=30_000)
    expect(fresh.page.locator(".wb-role")).to_have_text("user")
    expect(fresh.page.get_by_text("What new conversations get")).to_have_count(0)
    fresh.screenshot("home-empty")
    fresh.context.close()


def test_researchers_choose_the_model_stack_and_an_unserved_one_cannot_start(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
    web_settings: Settings,
    browser: Browser,
) -> None:
    """The picker lists every stack with its workers; one without a worker says so and
    Start waits; the researcher's Settings choice preselects it; users get no picker."""
    idle = "cpu-hf"  # no worker runs it in the default stack (WORKBENCH_AGENT_STACKS)
    if idle in web_settings.stack_names:
        pytest.skip("this stack runs a cpu-hf worker, so no stack here lacks one")
    person = people["researcher"]

    sign_in(visit, person)
    visit.page.goto(f"{base_url}/settings")
    expect(visit.page.get_by_label("Model stack to start with")).to_be_visible(timeout=30_000)
    save_settings(web_settings, person, UserSettings(stack=idle))
    try:
        visit.page.goto(f"{base_url}/conversation")
        picker = visit.page.get_by_label("Model stack")
        expect(picker).to_be_visible(timeout=30_000)
        default = web_settings.default_stack
        serving = re.compile(rf"^{default} \(\d+ workers?, \d+\.\d GB\)$")
        expect(picker.locator("option", has_text=serving)).to_have_count(1)
        expect(
            picker.locator("option", has_text=f"{idle} (unavailable: no worker running)")
        ).to_have_count(1)
        # Preselected from Settings, and refused before a room is opened.
        expect(visit.page.get_by_text(f"No worker runs the {idle} model stack")).to_be_visible()
        start = visit.page.get_by_role("button", name="Start conversation")
        expect(start).to_be_disabled()
        visit.screenshot("conversation-stack-unavailable")
        picker.select_option(label=picker.locator("option", has_text=default).inner_text())
        expect(start).to_be_enabled(timeout=15_000)
        expect(visit.page.get_by_text(f"No worker runs the {idle} model stack")).to_have_count(0)
    finally:
        save_settings(web_settings, person, UserSettings())

    plain = Visit(browser.new_context(viewport={"width": 1280, "height": 900}))
    try:
        sign_in(plain, people["user"])
        plain.page.goto(f"{base_url}/conversation")
        expect(plain.page.get_by_role("button", name="Start conversation")).to_be_enabled(
            timeout=30_000
        )
        expect(plain.page.get_by_label("Model stack")).to_be_hidden()
        plain.page.goto(f"{base_url}/settings")
        expect(plain.page.get_by_label("Theme")).to_be_visible(timeout=30_000)
        expect(plain.page.get_by_label("Model stack to start with")).to_be_hidden()
    finally:
        plain.context.close()


def test_the_theme_setting_themes_every_page(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
    web_settings: Settings,
) -> None:
    person = people["user"]

    def set_theme(theme: Literal["light", "dark", "system"] | None) -> None:
        save_settings(web_settings, person, UserSettings(ui=UiSettings(theme=theme)))

    def background() -> str:
        return str(visit.page.evaluate("getComputedStyle(document.body).backgroundColor"))

    sign_in(visit, person)
    set_theme("dark")
    try:
        visit.page.goto(f"{base_url}/history")
        expect(visit.page).to_have_url(re.compile(r"/history\?theme=dark$"), timeout=30_000)
        expect(visit.page.get_by_role("link", name="Conversation")).to_have_attribute(
            "href", "/conversation?theme=dark", timeout=30_000
        )
        dark = background()
        visit.screenshot("history-dark")
        set_theme("light")
        visit.page.get_by_role("link", name="Conversation").click()  # asks for dark; gets light
        expect(visit.page).to_have_url(re.compile(r"/conversation\?theme=default$"), timeout=30_000)
        expect(visit.page.get_by_role("button", name="Start conversation")).to_be_visible(
            timeout=30_000
        )
        assert background() != dark, dark
    finally:
        set_theme(None)


PAGES = ("", "conversation", "history", "analytics", "profile", "settings", "admin")
# Where the page content ends to the right, shadow roots (Bokeh, Panel widgets) included.
# What scrolls inside its own box (a wide table) counts by its box, not by its content.
_RIGHTMOST = """() => {
  let right = 0;
  const walk = (root) => {
    for (const el of root.children) {
      const box = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      if (box.width && box.height && style.visibility !== 'hidden')
        right = Math.max(right, box.right);
      if (style.overflowX !== 'visible') continue;  // it scrolls or clips its content
      if (el.shadowRoot) walk(el.shadowRoot);
      walk(el);
    }
  };
  walk(document.querySelector('#main') || document.body);
  return right;
}"""


@pytest.mark.parametrize(("device", "width"), [("laptop", 1280), ("narrow", 390)])
def test_every_page_fits_a_laptop_and_a_narrow_screen(
    visit: Visit,
    base_url: str,
    people: dict[str, Persona],
    sign_in,  # type: ignore[no-untyped-def]
    device: str,
    width: int,
) -> None:
    """Each page as an admin (who sees every section), screenshotted; nothing reaches past
    the window's right edge (a page that needs sideways scrolling on a phone fails)."""
    sign_in(visit, people["admin"])
    visit.page.set_viewport_size({"width": width, "height": 900})
    for path in PAGES:
        visit.page.goto(f"{base_url}/{path}")
        expect(visit.page.locator("nav.wb-nav")).to_be_attached(timeout=30_000)
        visit.page.wait_for_load_state("networkidle")
        visit.page.wait_for_timeout(1500)  # plots and tables lay themselves out
        visit.screenshot(f"page-{path or 'home'}-{device}")
        rightmost = visit.page.evaluate(_RIGHTMOST)
        assert rightmost <= width + 1, f"/{path} reaches {rightmost:.0f} px in a {width} px window"
