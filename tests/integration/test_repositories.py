"""Repositories over the real schema: typed results, clear errors, nothing stored half-way."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.support.personas import Persona, create_user, recorded_as, session_as
from workbench.db.connection import service_session
from workbench.db.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from workbench.db.models import TurnDraft, UiSettings, UserSettings
from workbench.db.repositories import AnalyticsRepo, ConversationsRepo, ProfilesRepo, PromptsRepo

pytestmark = pytest.mark.integration

NASTY_TEXTS = [
    "'; drop table public.turns; --",
    "Robert'); DELETE FROM auth.users WHERE ('1'='1",
    "naïve café — 日本語の文 🙂",
    "\\x00 not a nul, just text",
    "a" * 19_999,
]


@pytest.fixture(scope="module")
def people(app_db: str, jwt_secret: str) -> dict[str, Persona]:
    with psycopg.connect(app_db, autocommit=True) as conn:
        return {
            "user": create_user(conn, name="user", role="user", jwt_secret=jwt_secret),
            "other": create_user(conn, name="other", role="user", jwt_secret=jwt_secret),
            "admin": create_user(conn, name="admin", role="admin", jwt_secret=jwt_secret),
        }


async def test_profile_created_on_sign_up_and_edited(
    app_db: str, people: dict[str, Persona]
) -> None:
    user = people["user"]
    async with session_as(app_db, user) as conn:
        profile = await ProfilesRepo(conn).mine()
        assert profile.id == user.id
        assert profile.role == "user"
        assert profile.display_name.startswith("user-")  # from the email, no display name given
    settings = UserSettings(
        stack="cpu-small",
        voice="en-us+f3",  # an espeak-ng variant
        language="en-US",
        ui=UiSettings(theme="dark", show_latency=True),
    )
    async with session_as(app_db, user) as conn:
        updated = await ProfilesRepo(conn).update_mine(display_name="Zoë 🙂", settings=settings)
    assert updated.display_name == "Zoë 🙂"
    assert updated.settings == {
        "stack": "cpu-small",
        "voice": "en-us+f3",
        "language": "en-US",
        "ui": {"theme": "dark", "show_latency": True},
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"stack": "CPU SMALL"},
        {"voice": "en us; rm -rf"},
        {"language": "english"},
        {"ui": {"theme": "neon"}},
        {"ui": {"show_latency": "yes"}},
        {"unknown": 1},
        {"ui": {"theme": "dark", "extra": True}},
    ],
)
async def test_invalid_settings_are_refused_by_database_and_model(
    app_db: str, people: dict[str, Persona], bad: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="validation error"):
        UserSettings.model_validate(bad)
    async with session_as(app_db, people["user"]) as conn:
        before = (await ProfilesRepo(conn).mine()).settings
    # Bypass the model to prove the database refuses it on its own.
    with pytest.raises(InvalidInput, match=r"valid_user_settings|profiles_settings_check"):
        async with session_as(app_db, people["user"]) as conn:
            repo = ProfilesRepo(conn)
            await repo._execute(
                "update public.profiles set settings = %s where id = auth.uid()",
                [psycopg.types.json.Jsonb(bad)],
            )
    async with session_as(app_db, people["user"]) as conn:
        assert (await ProfilesRepo(conn).mine()).settings == before


@pytest.mark.parametrize("name", ["", "x" * 81])
async def test_bad_display_names_are_refused(
    app_db: str, people: dict[str, Persona], name: str
) -> None:
    with pytest.raises(InvalidInput, match="display_name"):
        async with session_as(app_db, people["user"]) as conn:
            await ProfilesRepo(conn).update_mine(display_name=name)


async def test_role_change_from_a_user_is_refused(app_db: str, people: dict[str, Persona]) -> None:
    with pytest.raises(PermissionDenied, match="only an admin"):
        async with session_as(app_db, people["user"]) as conn:
            await ProfilesRepo(conn).set_role(people["user"].id, "admin")  # type: ignore[arg-type]


async def test_prompt_versions_activate_and_roll_back(
    app_db: str, people: dict[str, Persona]
) -> None:
    admin = people["admin"]
    async with session_as(app_db, admin) as conn:
        repo = PromptsRepo(conn)
        prompt = await repo.create(slug="support", title="Support agent")
        v1 = await repo.add_version(
            prompt.id,
            "You help {{user_name}} with {{topic}}.",
            notes="first",
            defaults={"topic": "your account"},
        )
        v2 = await repo.add_version(prompt.id, "Be brief. You help {{user_name}}.")
        assert (v1.version, v2.version) == (1, 2)
        assert v1.variables == ["user_name", "topic"]
        assert v1.render({"user_name": "Ada", "topic": "audio"}) == "You help Ada with audio."
        assert v1.render({"user_name": "Ada"}) == "You help Ada with your account."
        await repo.activate(prompt.id, v2.id)
    async with session_as(app_db, admin) as conn:
        repo = PromptsRepo(conn)
        assert (await repo.by_slug("support")).active_version_id == v2.id
        await repo.activate(prompt.id, v1.id)  # rollback
        assert [v.version for v in await repo.versions(prompt.id)] == [2, 1]
    async with session_as(app_db, admin) as conn:
        session = await PromptsRepo(conn).for_session("support", user_id=admin.id, role="admin")  # type: ignore[arg-type]
    assert session.version.id == v1.id
    assert session.experiment_id is None


async def test_a_pinned_version_is_for_a_staff_members_room_only(
    app_db: str, people: dict[str, Persona]
) -> None:
    """A room may pin a draft (a simulation before activation); the role is checked in SQL."""
    admin, user = people["admin"], people["user"]
    async with session_as(app_db, admin) as conn:
        repo = PromptsRepo(conn)
        prompt = await repo.create(slug="pinnable", title="Pinnable")
        active = await repo.add_version(prompt.id, "You are helpful.")
        draft = await repo.add_version(prompt.id, "You are helpful and brief.")
        await repo.activate(prompt.id, active.id)
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        async with service_session(conn, acting_for=admin.id):
            pinned = await PromptsRepo(conn).pinned("pinnable", draft.version)
            assert pinned is not None
            assert pinned.version.id == draft.id
            assert await PromptsRepo(conn).pinned("pinnable", 99) is None
        async with service_session(conn, acting_for=user.id):
            assert await PromptsRepo(conn).pinned("pinnable", draft.version) is None


async def test_an_archived_prompt_is_listed_nowhere_and_starts_no_session(
    app_db: str, people: dict[str, Persona]
) -> None:
    admin = people["admin"]
    async with session_as(app_db, admin) as conn:
        repo = PromptsRepo(conn)
        prompt = await repo.create(slug="retired", title="Retired")
        version = await repo.add_version(prompt.id, "Old ways.")
        await repo.activate(prompt.id, version.id)
        archived = await repo.archive(prompt.id)
        assert archived.archived_at is not None
        assert "retired" not in {p.slug for p in await repo.all_prompts()}
        with pytest.raises(NotFound, match="archived"):
            await repo.for_session("retired", user_id=admin.id, role="admin")  # type: ignore[arg-type]
        with pytest.raises(NotFound):
            await repo.archive(prompt.id)  # once is enough
        assert [v.body for v in await repo.versions(prompt.id)] == ["Old ways."]  # history stays
    async with session_as(app_db, people["user"]) as conn:
        with pytest.raises(NotFound):  # only admins archive (RLS: the row is not theirs to touch)
            await PromptsRepo(conn).archive(prompt.id)


async def test_activating_a_version_of_another_prompt_is_refused(
    app_db: str, people: dict[str, Persona]
) -> None:
    admin = people["admin"]
    async with session_as(app_db, admin) as conn:
        repo = PromptsRepo(conn)
        first = await repo.create(slug="first", title="First")
        second = await repo.create(slug="second", title="Second")
        foreign = await repo.add_version(second.id, "other prompt's text")
    with pytest.raises(InvalidInput, match="system_prompts_active_version_fk"):
        async with session_as(app_db, admin) as conn:
            await PromptsRepo(conn).activate(first.id, foreign.id)


@pytest.mark.parametrize(("body", "why"), [("", "body"), ("x" * 20_001, "body")])
async def test_bad_prompt_bodies_are_refused(
    app_db: str, people: dict[str, Persona], body: str, why: str
) -> None:
    async with session_as(app_db, people["admin"]) as conn:
        prompt = await PromptsRepo(conn).create(slug=f"p-{len(body)}", title="t")
    with pytest.raises(InvalidInput, match=why):
        async with session_as(app_db, people["admin"]) as conn:
            await PromptsRepo(conn).add_version(prompt.id, body)


async def test_duplicate_slug_is_a_conflict(app_db: str, people: dict[str, Persona]) -> None:
    async with session_as(app_db, people["admin"]) as conn:
        await PromptsRepo(conn).create(slug="dup", title="t")
    with pytest.raises(Conflict, match="slug"):
        async with session_as(app_db, people["admin"]) as conn:
            await PromptsRepo(conn).create(slug="dup", title="t")


async def test_experiment_assignment_is_reproducible_and_weighted(
    app_db: str, people: dict[str, Persona]
) -> None:
    admin = people["admin"]
    async with session_as(app_db, admin) as conn:
        repo = PromptsRepo(conn)
        prompt = await repo.create(slug="ab", title="A/B")
        control = await repo.add_version(prompt.id, "control")
        brief = await repo.add_version(prompt.id, "brief")
        await repo.activate(prompt.id, control.id)
        experiment = await repo.create_experiment(prompt.id, "brevity", target_roles=["user"])
        arm_a = await repo.add_variant(experiment.id, control.id, label="control", weight=3)
        arm_b = await repo.add_variant(experiment.id, brief.id, label="brief", weight=1)
    with pytest.raises(InvalidInput, match="at least two variants"):
        async with session_as(app_db, admin) as conn:
            repo = PromptsRepo(conn)
            solo = await repo.create_experiment(prompt.id, "solo")
            await repo.add_variant(solo.id, control.id, label="only", weight=1)
            await repo.start_experiment(solo.id)
    async with session_as(app_db, admin) as conn:
        repo = PromptsRepo(conn)
        await repo.start_experiment(experiment.id)
        counts = Counter([await repo.assign(experiment.id, f"unit-{i}") for i in range(2000)])
        again = [await repo.assign(experiment.id, f"unit-{i}") for i in range(50)]
        first = [await repo.assign(experiment.id, f"unit-{i}") for i in range(50)]
        user_session = await repo.for_session("ab", user_id=people["user"].id, role="user")
        admin_session = await repo.for_session("ab", user_id=admin.id, role="admin")  # type: ignore[arg-type]
    assert again == first
    share = counts[arm_a.id] / 2000
    assert 0.70 < share < 0.80, share  # weight 3:1, binomial sd ~0.01
    assert counts[arm_b.id] + counts[arm_a.id] == 2000
    assert user_session.experiment_id == experiment.id
    assert user_session.variant_id in (arm_a.id, arm_b.id)
    assert admin_session.experiment_id is None  # not in the target population
    with pytest.raises(PermissionDenied, match="fixed once an experiment has started"):
        async with session_as(app_db, admin) as conn:
            await PromptsRepo(conn).add_variant(experiment.id, brief.id, label="late", weight=1)


def _turn(conversation_id: Any, idx: int, text: str, **extra: Any) -> TurnDraft:
    now = datetime.now(UTC)
    return TurnDraft(
        conversation_id=conversation_id,
        idx=idx,
        role="user" if idx % 2 == 0 else "agent",
        text=text,
        started_at=now,
        ended_at=now + timedelta(seconds=1),
        **extra,
    )


async def test_conversation_lifecycle_with_hostile_text(
    app_db: str, people: dict[str, Persona]
) -> None:
    user = people["user"]
    async with recorded_as(app_db, user) as conn:
        repo = ConversationsRepo(conn)
        conversation = await repo.start(room_name="room-1", model_specs={"name": "cpu-small"})
        for idx, text in enumerate(NASTY_TEXTS):
            await repo.add_turn(
                _turn(conversation.id, idx, text, v2v_s=0.8, filter_verdict={"action": "allow"})
            )
    async with session_as(app_db, user) as conn:
        repo = ConversationsRepo(conn)
        stored = await repo.turns(conversation.id)
        ended = await repo.end(conversation.id)
    assert [t.text for t in stored] == NASTY_TEXTS
    assert stored[0].filter_verdict == {"action": "allow"}
    assert ended.status == "completed"
    assert ended.ended_at is not None


async def test_failed_turn_write_stores_nothing(app_db: str, people: dict[str, Persona]) -> None:
    user = people["user"]
    async with recorded_as(app_db, user) as conn:
        conversation = await ConversationsRepo(conn).start()
    with pytest.raises(InvalidInput, match="turns_text_check"):
        async with recorded_as(app_db, user) as conn:
            repo = ConversationsRepo(conn)
            await repo.add_turn(_turn(conversation.id, 0, "fine"))
            await repo.add_turn(
                _turn(conversation.id, 1, "x" * 20_001)
            )  # too long: the whole session rolls back
    async with session_as(app_db, user) as conn:
        assert await ConversationsRepo(conn).turns(conversation.id) == []


async def test_negative_latency_is_refused(app_db: str, people: dict[str, Persona]) -> None:
    async with recorded_as(app_db, people["user"]) as conn:
        conversation = await ConversationsRepo(conn).start()
    with pytest.raises(InvalidInput, match="v2v_s"):
        async with recorded_as(app_db, people["user"]) as conn:
            await ConversationsRepo(conn).add_turn(_turn(conversation.id, 0, "hi", v2v_s=-0.1))


async def test_service_writes_turns_for_the_user_and_flushes_queues_idempotently(
    app_db: str, people: dict[str, Persona]
) -> None:
    user = people["user"]
    async with (
        await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn,
        service_session(conn, acting_for=user.id),
    ):
        repo = ConversationsRepo(conn)
        conversation = await repo.start(owner_id=user.id, room_name="agent-room")
        queued = [_turn(conversation.id, i, f"turn {i}") for i in range(5)]
        assert await repo.add_turns(queued) == 5
        assert (
            await repo.add_turns(queued) == 0
        )  # re-flushing after an uncertain commit duplicates nothing
    async with session_as(app_db, user) as conn:
        assert len(await ConversationsRepo(conn).turns(conversation.id)) == 5
    async with session_as(app_db, people["other"]) as conn:
        with pytest.raises(NotFound):
            await ConversationsRepo(conn).get(conversation.id)


async def test_dashboard_views_aggregate_latency(app_db: str, people: dict[str, Persona]) -> None:
    user = people["other"]
    async with recorded_as(app_db, user) as conn:
        repo = ConversationsRepo(conn)
        conversation = await repo.start(model_specs={"name": "views-stack"})
        for idx in range(10):
            await repo.add_turn(
                _turn(conversation.id, idx, "t", v2v_s=0.1 * idx, interrupted=idx == 9)
            )
    async with session_as(app_db, user) as conn:
        await AnalyticsRepo(conn).record("page_view", {"page": "analytics"})
        cur = await conn.execute(
            "select count(*) from public.analytics_events where kind = 'conversation_started'"
            " and payload ->> 'conversation_id' = %s",
            [str(conversation.id)],
        )
        assert await cur.fetchone() == (1,)  # recorded by the database, not by the client
    now = datetime.now(UTC)
    async with session_as(app_db, user) as conn:
        analytics = AnalyticsRepo(conn)
        rows = await analytics.latency_daily(
            since=now - timedelta(days=1), until=now + timedelta(days=1), model_stack="views-stack"
        )
        activity = await analytics.activity_daily(
            since=now - timedelta(days=1), until=now + timedelta(days=1)
        )
    assert len(rows) == 1
    (row,) = rows
    assert row.turns == 5  # agent turns: odd idx
    assert row.v2v_p50_s == pytest.approx(0.5)
    assert row.interruption_rate == pytest.approx(0.2)
    assert sum(a.turns for a in activity) >= 10


async def test_recent_conversations_of_one_owner(app_db: str, people: dict[str, Persona]) -> None:
    viewer, other = people["admin"], people["user"]  # admins read everyone's conversations
    for persona in (viewer, other):
        async with recorded_as(app_db, persona) as conn:
            await ConversationsRepo(conn).start(room_name=f"owner-filter-{persona.name}")
    async with session_as(app_db, viewer) as conn:
        repo = ConversationsRepo(conn)
        everyone = await repo.recent(limit=1000)
        own = await repo.recent(limit=1000, owner_id=viewer.id)
    assert {viewer.id, other.id} <= {c.owner_id for c in everyone}
    assert own
    assert {c.owner_id for c in own} == {viewer.id}


async def test_connection_quality_per_conversation_and_per_day(
    app_db: str, people: dict[str, Persona]
) -> None:
    owner, other = people["user"], people["other"]
    room = f"conn-{datetime.now(UTC).timestamp()}"
    async with session_as(app_db, owner) as conn:
        assert not await ConversationsRepo(conn).report_connection(
            room_name=room, stats={"rtt_ms": 5}
        )  # no row yet
    async with recorded_as(app_db, owner) as conn:
        conversation = await ConversationsRepo(conn).start(
            room_name=room, model_specs={"name": "conn-stack"}
        )
    async with session_as(app_db, owner) as conn:
        repo = ConversationsRepo(conn)
        first = {"rtt_ms": 10, "jitter_ms": 1.0, "packets_lost": 1, "packets_sent": 20}
        assert await repo.report_connection(room_name=room, stats=first)
        # A second sample within the same second is dropped by the database.
        assert not await repo.report_connection(room_name=room, stats=first)
    with psycopg.connect(app_db, autocommit=True) as conn:  # the rest, a second apart
        for n, (rtt, sent) in enumerate(zip((20, 30, 40, 100), (40, 60, 80, 100), strict=True)):
            conn.execute(
                """insert into public.connection_samples
                       (conversation_id, sampled_at, rtt_ms, jitter_ms, packets_lost, packets_sent)
                   values (%s, now() + %s * interval '1 second', %s, %s, %s, %s)""",
                [conversation.id, n + 2, rtt, rtt / 10, sent // 20, sent],
            )
    async with session_as(app_db, other) as conn:  # not their conversation: nothing lands
        assert not await ConversationsRepo(conn).report_connection(
            room_name=room, stats={"rtt_ms": 1}
        )
    now = datetime.now(UTC)
    async with session_as(app_db, owner) as conn:
        cur = await conn.execute(
            "select samples, rtt_p50_ms, rtt_p95_ms, jitter_p50_ms, loss_rate"
            " from public.analytics_connection where conversation_id = %s",
            [conversation.id],
        )
        assert await cur.fetchone() == (5, 30.0, pytest.approx(88.0), 3.0, 0.05)
        (daily,) = await AnalyticsRepo(conn).connection_daily(
            since=now - timedelta(days=1), until=now + timedelta(days=1), model_stack="conn-stack"
        )
    assert daily.conversations == 1
    assert daily.rtt_p95_ms == pytest.approx(88.0)
    assert daily.loss_rate == pytest.approx(0.05)
