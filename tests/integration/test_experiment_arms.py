"""Experiment arms compared in SQL under RLS: per-arm voice-to-voice, for researchers only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from evals.experiments import arm_summaries
from tests.support.personas import Persona, create_user, session_as
from workbench.db.repositories import AnalyticsRepo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def people(app_db: str, jwt_secret: str) -> dict[str, Persona]:
    with psycopg.connect(app_db, autocommit=True) as conn:
        people = {
            name: create_user(conn, name=name, role=role, jwt_secret=jwt_secret)
            for name, role in (("caller", "user"), ("researcher", "researcher"))
        }
        # An experiment with two arms over two versions; conversations on each arm.
        prompt = conn.execute(
            "insert into public.system_prompts (slug, title) values ('arms', 'Arms') returning id"
        ).fetchone()[0]  # type: ignore[index]
        versions = [
            conn.execute(
                "insert into public.prompt_versions (prompt_id, version, body) values (%s, 0, %s) returning id",
                [prompt, f"body {i}"],
            ).fetchone()[0]  # type: ignore[index]
            for i in range(2)
        ]
        experiment = conn.execute(
            "insert into public.prompt_experiments (prompt_id, name) values (%s, 'shorter') returning id",
            [prompt],
        ).fetchone()[0]  # type: ignore[index]
        now = datetime.now(UTC)
        for label, version, latencies in (
            ("a", versions[0], [1.0, 2.0, 3.0]),
            ("b", versions[1], [0.5, 0.5]),
        ):
            variant = conn.execute(
                """insert into public.experiment_variants (experiment_id, prompt_version_id, label, weight)
                   values (%s, %s, %s, 1) returning id""",
                [experiment, version, label],
            ).fetchone()[0]  # type: ignore[index]
            conversation = conn.execute(
                """insert into public.conversations (owner_id, prompt_version_id, experiment_id, variant_id, started_at)
                   values (%s, %s, %s, %s, %s) returning id""",
                [people["caller"].id, version, experiment, variant, now - timedelta(hours=1)],
            ).fetchone()[0]  # type: ignore[index]
            for idx, v2v in enumerate(latencies):
                conn.execute(
                    """insert into public.turns (conversation_id, idx, role, text, started_at, ended_at, v2v_s, interrupted)
                       values (%s, %s, 'agent', 'x', %s, %s, %s, %s)""",
                    [conversation, idx, now, now, v2v, idx == 0],
                )
        return people


async def test_arms_aggregate_per_variant_for_researchers(
    app_db: str, people: dict[str, Persona]
) -> None:
    window = {
        "since": datetime.now(UTC) - timedelta(days=1),
        "until": datetime.now(UTC) + timedelta(days=1),
    }
    async with session_as(app_db, people["researcher"]) as conn:
        rows = await AnalyticsRepo(conn).experiment_arms(**window)
    # One row per conversation (the unit intervals resample), its sums from its turns.
    by_arm = {row["label"]: row for row in rows}
    assert len(rows) == 2
    assert (by_arm["a"]["turns"], by_arm["a"]["v2v_turns"]) == (3, 3)
    assert by_arm["a"]["v2v_sum_s"] == pytest.approx(6.0)
    assert by_arm["a"]["interrupted"] == 1
    arms = arm_summaries(rows).set_index("label")
    assert arms.loc["a", "v2v_mean_s"] == pytest.approx(2.0)
    assert arms.loc["a", "interruption_rate"] == pytest.approx(1 / 3)
    assert arms.loc["b", "v2v_mean_s"] == pytest.approx(0.5)
    assert arms.loc["a", "conversations"] == 1
    # Experiments and their arms are for researchers: a plain user (even the one who
    # talked in them) gets no rows, as RLS hides the experiment tables from them.
    async with session_as(app_db, people["caller"]) as conn:
        assert await AnalyticsRepo(conn).experiment_arms(**window) == []
