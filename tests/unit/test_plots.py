"""Every shared plot builds and serialises from realistic data: ids, texts, gaps and empty frames."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from bokeh.embed import json_item

from evals.compare import compare_samples
from evals.experiments import arm_summaries
from evals.live_plots import (
    activity_bars,
    arm_comparison,
    connection_trend,
    interruption_trend,
    latency_trend,
    stage_breakdown,
)
from evals.plots import (
    comparison_plot,
    latency_histogram,
    latency_over_turns,
    turn_taking_curve,
    turn_taking_frame,
    variant_scores,
    wer_over_time,
)
from evals.sessions import agent_turn_latency
from workbench.db.models import EvalSample

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def _serialises(plot: object) -> None:
    json_item(plot)  # type: ignore[arg-type] # raises bokeh's SerializationError on a bad column


def _turns() -> pd.DataFrame:
    conversation = uuid.uuid4()
    rows = []
    for i in range(6):
        user = i % 2 == 0
        rows.append(
            {
                "conversation_id": conversation,
                "idx": i,
                "role": "user" if user else "agent",
                "text": f"turn {i}",
                "started_at": NOW + timedelta(seconds=i),
                "interrupted": False,
                "eou_delay_s": 0.5 if user else None,
                "stt_s": 0.3 if user else None,
                "llm_ttft_s": None if user else 0.4,
                "tts_ttfb_s": None if user else 0.2,
                "v2v_s": None if user else (None if i == 5 else 1.5),
                "v2v_audio_s": None,
            }
        )
    return pd.DataFrame(rows)


def test_live_session_plots() -> None:
    latency = agent_turn_latency(_turns())
    assert list(latency["turn"]) == [1, 2, 3]
    assert latency.loc[0, "eou_delay_s"] == 0.5  # taken from the user turn it answered
    _serialises(latency_over_turns(latency))
    _serialises(latency_histogram(latency["v2v_s"], title="v2v"))
    _serialises(latency_histogram([], title="empty"))


def test_dashboard_plots_with_and_without_data() -> None:
    daily = pd.DataFrame(
        {
            "day": [NOW - timedelta(days=d) for d in range(3)] * 2,
            "model_stack": ["cpu-small"] * 3 + ["gpu-large"] * 3,
            "prompt_version_id": [uuid.uuid4()] * 6,
            "turns": [10, 0, 5, 3, 3, 3],
            "v2v_p50_s": [1.2, None, 1.1, 0.5, 0.6, 0.55],
            "v2v_p95_s": [2.0, None, 1.9, 0.9, 1.0, 0.95],
            "eou_delay_mean_s": [0.5] * 6,
            "stt_mean_s": [0.3] * 6,
            "llm_ttft_mean_s": [0.4, None, 0.4, 0.1, 0.1, 0.1],
            "tts_ttfb_mean_s": [0.2] * 6,
        }
    )
    daily["interruption_rate"] = [0.1, None, 0.0, 0.2, 0.1, 0.0]
    for frame in (daily, daily.iloc[0:0]):
        _serialises(latency_trend(frame))
        _serialises(stage_breakdown(frame))
        _serialises(interruption_trend(frame))
    arms = arm_summaries(
        [
            {
                "experiment": "shorter",
                "label": label,
                "conversation_id": i,
                "turns": turns,
                "v2v_sum_s": v2v,
                "v2v_turns": turns,
                "interrupted": 0,
            }
            for i, (label, turns, v2v) in enumerate(
                [("v1", 20, 30.0), ("v1", 20, 31.0), ("v2", 1, 1.2)]
            )
        ]
    )
    _serialises(arm_comparison(arms))
    _serialises(arm_comparison(arms.iloc[0:0]))
    activity = pd.DataFrame({"day": [NOW], "conversations": [2], "turns": [14]})
    _serialises(activity_bars(activity))
    runs = pd.DataFrame(
        {
            "id": [uuid.uuid4(), uuid.uuid4()],
            "started_at": [NOW, NOW + timedelta(days=1)],
            "model": ["whisper-tiny-en-ct2"] * 2,
            "dataset_id": ["pocketsphinx@abc"] * 2,
            "wer": [0.11, 0.1],
            "wer_low": [0.05, 0.04],
            "wer_high": [0.2, 0.19],
            "metrics": [{"wer": 0.11}, {"wer": 0.1}],
        }
    )
    _serialises(wer_over_time(runs))


def test_eval_result_plots() -> None:
    rng = np.random.default_rng(0)
    a = [
        EvalSample(
            sample_id=str(i),
            metrics={
                "word_errors": int(rng.integers(0, 3)),
                "reference_words": 10,
                "duration_s": 2.0,
                "inference_s": 0.2,
            },
        )
        for i in range(8)
    ]
    b = [s.model_copy(update={"metrics": {**s.metrics, "inference_s": 0.4}}) for s in a]
    _serialises(comparison_plot(compare_samples("asr", a, b), baseline="a", candidate="b"))
    summary = {
        "variants": {
            "v1": {"judge_score": {"mean": 2.0, "ci95": [1.5, 2.5], "n": 3}},
            "v2": {"judge_score": {"mean": 3.0, "ci95": [2.5, 3.5], "n": 3}},
        }
    }
    _serialises(variant_scores(summary))


def test_the_turn_taking_curve_marks_the_front_and_the_default() -> None:
    def setting(cut: float, p95: float | None, threshold: float | None) -> dict[str, object]:
        delay = {"value": p95, "ci95": [p95 * 0.9, p95 * 1.1]} if p95 is not None else None
        return {
            "vad_silence_s": 0.3,
            "min_delay_s": 0.3,
            "max_delay_s": 2.0,
            "unlikely_threshold": threshold,
            "utterances": 10,
            "cut_off_rate": {"value": cut, "ci95": [max(0, cut - 0.1), cut + 0.1]},
            "delay_p50_s": delay,
            "delay_p95_s": delay,
        }

    summary = {
        "default": "b",
        "settings": {
            "a": setting(0.8, 0.4, None),  # quick, cuts off
            "b": setting(0.4, 2.0, 0.36),  # the default
            "c": setting(0.4, 3.0, 0.36),  # as many cut off as b, waits longer: beaten
            "d": setting(0.1, 3.0, 0.5),  # patient
            "e": setting(1.0, None, None),  # cuts everyone off: no delay to draw
        },
    }
    frame = turn_taking_frame(summary).set_index("setting")
    assert frame["front"].to_dict() == {"d": True, "b": True, "c": False, "a": True}
    assert frame.loc["b", "default"]
    _serialises(turn_taking_curve(summary))
    _serialises(turn_taking_curve({"default": "x", "settings": {}}))


def test_the_connection_trend_draws_days_stacks_and_gaps() -> None:
    daily = pd.DataFrame(
        [
            {
                "day": NOW - timedelta(days=d),
                "model_stack": stack,
                "conversations": 2,
                "rtt_p50_ms": 40.0,
                "rtt_p95_ms": 90.0 if d else None,
                "jitter_p50_ms": 3.0,
                "jitter_p95_ms": 8.0,
                "loss_rate": 0.01,
            }
            for d in range(3)
            for stack in ("cpu-small", "cpu-hf")
        ]
    )
    _serialises(connection_trend(daily))
    empty = connection_trend(daily.iloc[0:0])
    assert "no samples" in empty.title.text
    _serialises(empty)


def test_one_day_of_data_reads_as_a_date_and_shares_stay_between_0_and_1() -> None:
    """Seen on the page: one day labelled "999000us", an interruption share from -1 to 1."""
    from bokeh.models import DatetimeTickFormatter, Range1d

    day = pd.Timestamp("2026-11-29", tz="UTC")
    one_day = pd.DataFrame(
        {
            "day": [day],
            "model_stack": ["cpu-small"],
            "turns": [4],
            "v2v_p50_s": [1.1],
            "v2v_p95_s": [2.3],
            "interruption_rate": [0.0],
        }
    )
    for plot in (latency_trend(one_day), interruption_trend(one_day)):
        formatter = plot.xaxis[0].formatter
        assert isinstance(formatter, DatetimeTickFormatter)
        assert {formatter.microseconds, formatter.hours, formatter.days} == {"%b %d"}
        assert isinstance(plot.x_range, Range1d)  # the day in the middle of three
        assert plot.x_range.start < day < plot.x_range.end
        _serialises(plot)
    share = interruption_trend(one_day)
    assert (share.y_range.start, share.y_range.end) == (0, 1)
