"""A/B decisions on live experiment arms: intervals over conversations, detectable differences, verdicts."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from evals.experiments import ARM_METRICS, decisions, synthetic_arm
from evals.stats import independent_difference, ratio_of_sums

pytestmark = pytest.mark.unit


def _conversations(
    rng: np.random.Generator, label: str, n: int, v2v_mean: float, *, rating: float | None = None
) -> list[dict[str, Any]]:
    return synthetic_arm(rng, label, n, v2v_mean, experiment="brevity", rating=rating)


def _verdict(found: list[Any], metric: str) -> str:
    return next(d.verdict for d in found if d.metric.name == metric)


def test_a_real_difference_is_called_with_its_interval() -> None:
    rng = np.random.default_rng(1)
    rows = _conversations(rng, "v1", 40, 1.0) + _conversations(rng, "v2", 40, 0.8)
    found = decisions(rows)
    speed = next(d for d in found if d.metric.name == "voice-to-voice")
    assert (speed.baseline, speed.arm) == ("v1", "v2")
    assert speed.difference.low < -0.2 < speed.difference.high  # the true effect is inside
    assert re.fullmatch(
        r"v2 faster by 0\.\d\d s \[0\.\d\d, 0\.\d\d\]", _verdict(found, "voice-to-voice")
    )
    assert "rating" not in {d.metric.name for d in found}  # no conversation was rated


def test_too_few_conversations_get_no_verdict() -> None:
    rng = np.random.default_rng(2)
    rows = _conversations(rng, "A", 3, 1.0) + _conversations(rng, "B", 30, 0.5)
    assert _verdict(decisions(rows), "voice-to-voice") == (
        "not enough data: B has 30 and A 3 conversations (5 each at least)"
    )


def test_no_difference_says_what_it_could_detect_and_how_many_more_it_needs() -> None:
    rng = np.random.default_rng(5)
    rows = _conversations(rng, "A", 12, 1.0, rating=3.0) + _conversations(
        rng, "B", 12, 0.97, rating=3.0
    )
    found = decisions(rows)
    speed = next(d for d in found if d.metric.name == "voice-to-voice")
    verdict = speed.verdict
    assert verdict.startswith("no clear difference (")
    assert f"detectable now: {speed.detectable:.2f} s" in verdict
    assert speed.detectable == pytest.approx(2.8 * speed.standard_error)
    assert speed.more_needed is not None
    assert f"about {speed.more_needed} more conversations per arm" in verdict
    # Standard errors shrink as 1/sqrt(n): the estimate of what is needed is about that.
    assert speed.more_needed > 12
    assert _verdict(found, "rating").startswith("no clear difference (+0.00")


def test_the_interval_covers_a_known_effect_about_95_times_in_100() -> None:
    """Coverage over repeated experiments with a true difference of -0.1 s (ratio of sums)."""
    metric = ARM_METRICS[0]
    covered = 0
    trials = 120
    for seed in range(trials):
        rng = np.random.default_rng(100 + seed)
        a = _conversations(rng, "A", 25, 1.0)
        b = _conversations(rng, "B", 25, 0.9)

        def as_array(rows: list[dict[str, Any]]) -> np.ndarray:
            return np.array([[r["v2v_sum_s"], r["v2v_turns"]] for r in rows], dtype=float)

        interval, _ = independent_difference(
            as_array(a), as_array(b), metric.statistic, resamples=400, seed=seed
        )
        covered += interval.low <= -0.1 <= interval.high
    assert 0.88 <= covered / trials <= 0.99
    assert metric.statistic is ratio_of_sums
