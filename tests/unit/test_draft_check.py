"""The Admin page's draft check: what it runs and how it reports, without running a suite."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dashboards.components.draft_check import (
    DraftCheck,
    SuiteRun,
    available_suites,
    verdict_markdown,
)
from evals.compare import MetricComparison
from evals.stats import Interval

pytestmark = pytest.mark.unit


def test_every_shipped_suite_is_offered() -> None:
    assert {"smoke", "quick", "goals"} <= set(available_suites())


def test_a_run_pins_the_version_and_stores_as_the_admin(tmp_path: Path) -> None:
    run = SuiteRun(suite="quick", slug="tutor", version=3, email="a@x.org", folder=tmp_path / "r")
    args = " ".join(run.args)
    assert "-m evals simulate" in args
    assert "--prompt tutor@3" in args
    assert "--as a@x.org" in args
    assert args.endswith(f"--out {tmp_path / 'r'}")
    assert run.calls_done() == 0
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "samples.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    assert run.calls_done() == 2


def test_the_verdict_table_names_each_measure_and_its_verdict(tmp_path: Path) -> None:
    slower = MetricComparison(
        label="heard voice-to-voice (s)",
        baseline=Interval(1.0, 0.9, 1.1),
        candidate=Interval(1.5, 1.4, 1.6),
        difference=Interval(0.5, 0.3, 0.7),
        lower_is_better=True,
        samples=8,
    )
    table = verdict_markdown([slower], active=1, draft=2, folders=[tmp_path / "a", tmp_path / "b"])
    assert "| measure | active (v1) | v2 |" in table
    assert "+0.500 [+0.300, +0.700] | **worse** |" in table


def test_nothing_runs_without_an_active_version(tmp_path: Path) -> None:
    check = DraftCheck(slug="new", active=None, versions=[1], email="a@x.org", data_dir=tmp_path)
    asyncio.run(check.run())
    assert "needs an active version" in check.status
    assert not (tmp_path / "simulations").exists()
