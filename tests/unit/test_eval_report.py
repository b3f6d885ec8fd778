"""`python -m evals report`: one self-contained page with metadata, comparison, plots and errors."""

from __future__ import annotations

import re
from pathlib import Path

import panel  # noqa: F401  (loaded, as in a notebook: its models must not leak into the report)
import pytest

from evals.__main__ import main
from evals.report import build_report
from tests.support.reports import HOSTILE, asr_run, simulation_run

pytestmark = pytest.mark.unit


def test_the_report_compares_runs_and_keeps_what_a_reader_needs(tmp_path: Path) -> None:
    baseline = asr_run(tmp_path / "tiny-30s", errors=[0, 1, 0, 2, 0, 1, 0, 0])
    candidate = asr_run(tmp_path / "tiny-10s", errors=[3, 4, 2, 5, 3, 4, 2, 3])
    elsewhere = asr_run(tmp_path / "other-set", errors=[1], dataset="other@000000000002")
    page = build_report([baseline, candidate, elsewhere])

    assert page.startswith("<!doctype html>")
    for text in ("tiny-30s", "tiny-10s", "clips@000000000001", "beam_size", "against"):
        assert text in page
    assert "worse" in page  # 2.6 more errors per clip on every clip: significant
    assert "other-set is not compared with tiny-30s" in page
    # Self-contained: Bokeh's library is inlined, no script or style is fetched.
    assert "Bokeh.embed" in page
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link[^>]*\bhref=", page)
    # Text from data is escaped, never markup.
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_the_cli_writes_the_report_and_refuses_a_missing_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = asr_run(tmp_path / "run-a", errors=[1, 0])
    out = tmp_path / "report.html"
    assert main(["report", str(run.path), "--out", str(out), "--title", "Tiny"]) == 0
    assert "<title>Tiny</title>" in out.read_text()
    assert str(out) in capsys.readouterr().out
    assert main(["report", str(tmp_path / "no-such-run")]) == 2
    assert "holds no eval run" in capsys.readouterr().err


def test_a_simulation_report_lists_every_call_and_plays_the_failed_ones(tmp_path: Path) -> None:
    heard = {"greeting": 1.0, "order": 2.0, "pause": 1.5, "noise": 1.2}
    baseline = simulation_run(tmp_path / "cpu-small", heard=heard, failing={"order"})
    slower = {name: v + 1.0 for name, v in heard.items()}
    candidate = simulation_run(tmp_path / "cpu-hf", heard=slower, failing={"order", "pause"})
    page = build_report([baseline, candidate])
    assert "cpu-small: calls" in page
    assert "cpu-hf: calls" in page
    assert page.count("<audio controls") == 3  # the failed calls' audio, inline
    assert "CallFailed: no agent joined room x" in page
    assert "heard voice-to-voice" in page  # compared, scenario by scenario
    assert "worse" in page  # a second slower in every scenario
    assert HOSTILE not in page
