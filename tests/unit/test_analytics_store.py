"""The analytics page's store and helpers, through their params (no server, no browser)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from dashboards.components.service_health import health_markdown
from dashboards.pages.analytics import AnalyticsPage, _runs_frame, latest_summary
from workbench.db.models import LiveStack

pytestmark = pytest.mark.unit


def test_default_range_is_the_last_thirty_days() -> None:
    store = AnalyticsPage(session=None)
    assert (store.until - store.since).days == 29
    since, until = store._range()
    assert (until - since).days == 30  # the last day is included


def test_an_inverted_range_is_refused() -> None:
    store = AnalyticsPage(session=None, since=date(2026, 11, 20), until=date(2026, 11, 1))
    with pytest.raises(ValueError, match="first day must not be after the last day"):
        store._range()


def _run(
    task: str, started: int, metrics: dict[str, object], spec: dict[str, object]
) -> dict[str, object]:
    return {
        "id": uuid.uuid4(),
        "task": task,
        "status": "completed",
        "dataset_id": "d@1",
        "spec": spec,
        "started_at": datetime(2026, 11, started, tzinfo=UTC),
        "metrics": metrics,
    }


def test_eval_runs_become_one_row_each_with_model_and_wer_interval() -> None:
    frame = _runs_frame(
        [
            _run(
                "asr",
                1,
                {"wer": 0.1, "wer_ci95": [0.05, 0.2], "samples": 10},
                {"stt": {"name": "whisper"}},
            ),
            _run("prompt_quality", 2, {"dialogues": 6, "variants": {}}, {"llm": {"name": "smol"}}),
            _run("latency", 3, {"samples": 4}, {"stack": {"name": "cpu-small"}}),
            _run("simulation", 4, {"calls": 8, "pass_rate": 0.5}, {"stack": {"name": "cpu-hf"}}),
        ]
    )
    assert list(frame["model"]) == ["whisper", "smol", "cpu-small", "cpu-hf"]
    assert frame.loc[3, "samples"] == 8
    assert frame.loc[0, "wer_low"] == 0.05
    assert frame.loc[1, "samples"] == 6
    assert latest_summary(frame, "prompt_quality") == {"dialogues": 6, "variants": {}}
    assert latest_summary(frame[frame["task"] == "asr"], "prompt_quality") is None
    assert _runs_frame([]).empty


def test_the_service_health_says_which_stacks_serve_and_what_is_wrong() -> None:
    def live(stack: str, workers: int, problems: str | None = None) -> LiveStack:
        return LiveStack(
            stack=stack,
            spec={},
            workers=workers,
            rooms=1,
            max_rooms=4,
            worker_memory_mb=1536,
            problems=problems,
        )

    table = health_markdown(
        [live("cpu-small", 1), live("cpu-hf", 0, "models failed to load")],
        [
            {
                "labels": {"alertname": "NoWorkerReady"},
                "state": "pending",
                "annotations": {"summary": "No agent worker is ready (cpu-hf)"},
            }
        ],
    )
    assert "| cpu-small | 1 | 1 / 4 | 1.5 GB | — |" in table
    assert "| cpu-hf | 0 | 1 / 4 | 1.5 GB | models failed to load |" in table
    assert "**NoWorkerReady** (pending) No agent worker is ready" in table
    assert "No agent worker is running" in health_markdown([], [])
