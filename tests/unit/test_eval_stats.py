"""Bootstrap intervals, percentiles and prompt-quality scoring helpers, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from evals.compare import MetricComparison, compare_samples
from evals.stats import bootstrap_ci, mean, median, paired_difference, ratio_of_sums
from evals.tasks.prompt_quality import expected_score, is_refusal, win_rate
from workbench.db.models import EvalSample
from workbench.metrics.latency import percentiles
from workbench.metrics.wer import error_rates

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("refs", "hyps", "cer"),
    [
        (["abc"], ["abc"], 0.0),
        (["abcd"], ["abed"], 1 / 4),  # one substituted character
        (["ab cd"], ["ab c"], 1 / 5),  # one deleted character of five (space counts)
    ],
)
def test_character_error_rate(refs: list[str], hyps: list[str], cer: float) -> None:
    assert error_rates(refs, hyps).cer == pytest.approx(cer)


def test_empty_reference_is_refused_not_scored() -> None:
    with pytest.raises(ValueError, match="empty after normalisation"):
        error_rates(["um"], ["hello"])  # a filler the normaliser removes


def test_corpus_wer_is_a_ratio_of_sums_not_a_mean_of_rates() -> None:
    # 1 error in 1 word and 0 errors in 9 words: corpus WER 0.1, mean of rates 0.5.
    rows = np.array([[1, 1], [0, 9]])
    assert ratio_of_sums(rows) == pytest.approx(0.1)


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible() -> None:
    data = np.random.default_rng(1).normal(10.0, 2.0, size=200)
    first = bootstrap_ci(data, mean, seed=7)
    again = bootstrap_ci(data, mean, seed=7)
    assert first == again
    assert first.low < first.estimate < first.high
    assert first.high - first.low == pytest.approx(2 * 1.96 * 2.0 / np.sqrt(200), rel=0.25)


def test_constant_data_has_a_point_interval() -> None:
    ci = bootstrap_ci(np.full(10, 3.0), median)
    assert (ci.low, ci.estimate, ci.high) == (3.0, 3.0, 3.0)


def test_paired_difference_sees_a_consistent_shift_that_unpaired_noise_would_hide() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0, 5, size=40)  # large spread between samples...
    shifted = base + 0.5  # ...but every sample improves by exactly 0.5
    diff = paired_difference(base, shifted, mean)
    assert diff.estimate == pytest.approx(0.5)
    assert diff.excludes(0.0)
    same = paired_difference(base, base.copy(), mean)
    assert not same.excludes(0.0)


def test_percentiles_skip_missing_values() -> None:
    summary = percentiles([1.0, None, 2.0, 3.0, float("nan"), 4.0])
    assert summary["n"] == 4
    assert summary["p50"] == pytest.approx(2.5)
    assert summary["max"] == 4.0
    assert percentiles([None])["p50"] is None


def test_expected_score_from_judge_probabilities() -> None:
    assert expected_score([0, 0, 0, 0, 1]) == 5
    assert expected_score([0.5, 0, 0, 0, 0.5]) == 3
    assert expected_score([0.2] * 5) == pytest.approx(3)


@pytest.mark.parametrize(
    ("reply", "refusal"),
    [
        ("I can't help with that.", True),
        ("Sorry, I cannot do that.", True),
        ("I'm unable to access your calendar.", True),
        ("Paris is the capital of France.", False),
        ("I canvassed the area.", False),
    ],
)
def test_refusal_detection(reply: str, refusal: bool) -> None:
    assert is_refusal(reply) is refusal


def _scored(dialogue: str, variant: str, score: float) -> EvalSample:
    return EvalSample(
        sample_id=f"{dialogue}::{variant}", metrics={"variant": variant, "judge_score": score}
    )


def test_win_rate_counts_ties_as_half() -> None:
    a = {d: _scored(d, "a", s) for d, s in (("d1", 3), ("d2", 3), ("d3", 4), ("d4", 2))}
    b = {d: _scored(d, "b", s) for d, s in (("d1", 4), ("d2", 3), ("d3", 2), ("d4", 5))}
    result = win_rate(a, b)
    assert result is not None
    assert result["win_rate"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert result["pairs"] == 4
    assert result["ci95"][0] <= result["win_rate"] <= result["ci95"][1]
    assert win_rate(a, {}) is None


def _call_rows(
    differences: dict[str, list[float]], base: float = 1.0
) -> tuple[list[EvalSample], list[EvalSample]]:
    """Baseline and candidate call rows: each scenario's calls, the candidate slower by its difference."""
    baseline, candidate = [], []
    for scenario, deltas in differences.items():
        for repeat, delta in enumerate(deltas):
            sid = f"{scenario}#{repeat}"
            baseline.append(EvalSample(sample_id=sid, metrics={"heard_v2v_mean_s": base}))
            candidate.append(EvalSample(sample_id=sid, metrics={"heard_v2v_mean_s": base + delta}))
    return baseline, candidate


def _v2v(rows: list[MetricComparison]) -> MetricComparison:
    return next(r for r in rows if r.label.startswith("heard voice-to-voice"))


def test_simulations_are_compared_by_scenario_not_by_call() -> None:
    """Two scenarios of 50 calls each, one 1 s slower, one 1 s faster in the candidate. Calls
    taken as independent would give a tight interval around 0; with the scenario as the unit
    there are two units, so the interval spans [-1, +1] (the known answer)."""
    baseline, candidate = _call_rows({"a": [1.0] * 50, "b": [-1.0] * 50})
    clustered = _v2v(compare_samples("simulation", baseline, candidate))
    assert clustered.samples == 2
    assert clustered.difference.estimate == pytest.approx(0.0)
    assert clustered.difference.low == pytest.approx(-1.0)
    assert clustered.difference.high == pytest.approx(1.0)
    assert clustered.verdict == "too few to tell (n < 5)"  # two units: no verdict at all
    # What the same rows give when every call counts as a sample: far too sure.
    naive = paired_difference(
        np.array([s.metrics["heard_v2v_mean_s"] for s in baseline]),
        np.array([s.metrics["heard_v2v_mean_s"] for s in candidate]),
        mean,
    )
    assert naive.high - naive.low < 0.5


def test_a_difference_every_scenario_shows_is_certain_and_gets_its_verdict() -> None:
    baseline, candidate = _call_rows({s: [0.3, 0.3] for s in "abcdef"})
    slower = _v2v(compare_samples("simulation", baseline, candidate))
    assert slower.difference.estimate == pytest.approx(0.3)
    assert (slower.difference.low, slower.difference.high) == pytest.approx((0.3, 0.3))
    assert slower.verdict == "worse"  # lower is better for latency


def _turn_taking_rows(cut: dict[str, list[bool]], delay_s: float) -> list[EvalSample]:
    """One row per clip and setting, as the turn-taking task writes them."""
    return [
        EvalSample(
            sample_id=f"{clip}@setting-{i}",
            metrics={"cut_off": c, "delay_s": -0.4 if c else delay_s},
        )
        for clip, cuts in cut.items()
        for i, c in enumerate(cuts)
    ]


def test_turn_taking_runs_are_compared_by_clip_with_delays_of_turns_not_cut_off() -> None:
    """Six clips of four settings each; the candidate cuts one setting of every clip off and
    waits 0.2 s longer after the last word where it does not."""
    clips = [f"clip{i}" for i in range(6)]
    baseline = _turn_taking_rows({c: [False] * 4 for c in clips}, delay_s=0.5)
    candidate = _turn_taking_rows({c: [True, False, False, False] for c in clips}, delay_s=0.7)
    rows = {r.label: r for r in compare_samples("turn_taking", baseline, candidate)}
    cut = rows["cut-off rate"]
    assert cut.samples == 6  # clips, not the 24 rows
    assert cut.difference.estimate == pytest.approx(0.25)
    assert cut.verdict == "worse"
    delay = rows["delay after last word p50 (s)"]
    assert delay.difference.estimate == pytest.approx(0.2)  # the cut-off turn's -0.4 s left out
    assert delay.verdict == "worse"


def test_experiment_arms_resample_conversations_not_turns() -> None:
    """Two conversations of 50 turns, one at 1 s and one at 2 s: turns taken as independent
    would give an interval of a few hundredths; over conversations it spans both."""
    from evals.experiments import arm_summaries

    rows = [
        {
            "experiment": "e",
            "label": "a",
            "conversation_id": i,
            "turns": 50,
            "v2v_sum_s": 50 * v2v,
            "v2v_turns": 50,
            "interrupted": cut,
        }
        for i, (v2v, cut) in enumerate([(1.0, 0), (2.0, 10)])
    ]
    arm = arm_summaries(rows).iloc[0]
    assert (arm["conversations"], arm["turns"]) == (2, 100)
    assert arm["v2v_mean_s"] == pytest.approx(1.5)
    assert (arm["v2v_low_s"], arm["v2v_high_s"]) == pytest.approx((1.0, 2.0))
    assert arm["interruption_rate"] == pytest.approx(0.1)
    assert (arm["interruption_low"], arm["interruption_high"]) == pytest.approx((0.0, 0.2))
