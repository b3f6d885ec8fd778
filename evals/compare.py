"""Compare two runs of the same task on the same samples: paired bootstrap CIs of the differences.

Only samples both runs scored without error are compared, pairwise, so a
difference comes from the models or prompts, not from different data. A
difference is called significant when its 95% interval excludes zero.

The unit resampled is the task's independent unit: a sample for most tasks; for
simulations the scenario (`scenario_units`), since the turns and repeated calls
of one scenario are not independent of each other; for turn taking the clip
(`clip_units`), whose rows (one per endpointing setting) share its speaker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evals.run_folder import RunFolder
from evals.simulation.units import scenario_units
from evals.stats import Interval, bootstrap_ci, mean, median, paired_difference, ratio_of_sums
from evals.tasks.turn_taking import clip_units
from workbench.db.models import EvalSample
from workbench.latency_stages import (
    LLM_FIRST_TOKEN,
    SPEECH_TO_TEXT,
    TTS_FIRST_AUDIO,
    VOICE_TO_VOICE,
)

# Below this many independent samples (scenarios, for a simulation) a percentile
# bootstrap's interval means little: two scenarios that both got slower give an
# interval that excludes zero. No verdict is given then.
MIN_SAMPLES = 5


@dataclass(frozen=True)
class MetricDef:
    """How a corpus metric is computed from per-sample columns."""

    label: str
    columns: tuple[str, ...]
    statistic: Callable[[np.ndarray], float]
    lower_is_better: bool


METRICS: dict[str, list[MetricDef]] = {
    "asr": [
        MetricDef("WER", ("word_errors", "reference_words"), ratio_of_sums, True),
        MetricDef("RTFx", ("duration_s", "inference_s"), ratio_of_sums, False),
    ],
    "latency": [
        *(
            MetricDef(f"{stage.label} p50 (s)", (stage.field,), median, True)
            for stage in (VOICE_TO_VOICE, SPEECH_TO_TEXT, LLM_FIRST_TOKEN, TTS_FIRST_AUDIO)
        ),
    ],
    "prompt_quality": [
        MetricDef("judge score (mean)", ("judge_score",), mean, False),
        MetricDef("similarity to reference", ("similarity",), mean, False),
        MetricDef("reply words (mean)", ("words",), mean, False),
    ],
    "simulation": [
        MetricDef("pass rate", ("passed",), mean, False),
        MetricDef("heard voice-to-voice (s)", ("heard_v2v_mean_s",), mean, True),
        MetricDef("live WER", ("live_wer",), mean, True),
        MetricDef("reply relevance", ("relevance",), mean, False),
        MetricDef("most similar reply pair", ("max_reply_similarity",), mean, True),
        MetricDef("agent over pauses (s)", ("talk_over_pauses_s",), mean, True),
    ],
    "turn_taking": [
        MetricDef("cut-off rate", ("cut_off_rate",), mean, True),
        MetricDef("delay after last word p50 (s)", ("delay_p50_s",), median, True),
    ],
}
# Tasks whose rows are not independent: rows grouped into the unit that is.
UNITS: dict[str, Callable[[list[EvalSample]], list[EvalSample]]] = {
    "simulation": scenario_units,
    "turn_taking": clip_units,
}


@dataclass(frozen=True)
class MetricComparison:
    """One metric of both runs, and the paired difference (candidate - baseline)."""

    label: str
    baseline: Interval
    candidate: Interval
    difference: Interval
    lower_is_better: bool
    samples: int

    @property
    def significant(self) -> bool:
        """The 95% interval of the difference excludes zero, over enough samples to say so."""
        return self.samples >= MIN_SAMPLES and self.difference.excludes(0.0)

    @property
    def verdict(self) -> str:
        """better / worse / no significant difference (for the candidate)."""
        if self.samples < MIN_SAMPLES:
            return f"too few to tell (n < {MIN_SAMPLES})"
        if not self.significant:
            return "no significant difference"
        improved = (self.difference.estimate < 0) == self.lower_is_better
        return "better" if improved else "worse"


def compare_samples(
    task: str, baseline: list[EvalSample], candidate: list[EvalSample]
) -> list[MetricComparison]:
    """Paired comparison of every metric of `task` over the samples both runs scored."""
    if task not in METRICS:
        raise ValueError(f"no comparison defined for task {task!r}")
    if task in UNITS:
        baseline, candidate = UNITS[task](baseline), UNITS[task](candidate)
    base = {s.sample_id: s for s in baseline if s.error is None}
    cand = {s.sample_id: s for s in candidate if s.error is None}
    out = []
    for metric in METRICS[task]:
        shared = sorted(
            sid
            for sid in base.keys() & cand.keys()
            if all(
                base[sid].metrics.get(c) is not None and cand[sid].metrics.get(c) is not None
                for c in metric.columns
            )
        )
        if not shared:
            continue
        a = np.array(
            [[base[sid].metrics[c] for c in metric.columns] for sid in shared], dtype=float
        )
        b = np.array(
            [[cand[sid].metrics[c] for c in metric.columns] for sid in shared], dtype=float
        )
        if len(metric.columns) == 1:
            a, b = a[:, 0], b[:, 0]
        out.append(
            MetricComparison(
                label=metric.label,
                baseline=bootstrap_ci(a, metric.statistic),
                candidate=bootstrap_ci(b, metric.statistic),
                difference=paired_difference(a, b, metric.statistic),
                lower_is_better=metric.lower_is_better,
                samples=len(shared),
            )
        )
    return out


def compare_runs(baseline: RunFolder, candidate: RunFolder) -> list[MetricComparison]:
    """Compare two run folders of the same task (versions and datasets must match)."""
    a, b = baseline.read_info(), candidate.read_info()
    if (a.task, a.task_version) != (b.task, b.task_version):
        raise ValueError(
            f"runs measure different things: {a.task} v{a.task_version} vs {b.task} v{b.task_version}"
        )
    if a.dataset_id != b.dataset_id:
        raise ValueError(f"runs are on different datasets: {a.dataset_id} vs {b.dataset_id}")
    return compare_samples(a.task, baseline.samples(), candidate.samples())


def format_comparison(rows: list[MetricComparison]) -> str:
    """A printable table."""
    header = f"{'metric':<26}{'baseline':>24}{'candidate':>24}{'difference':>26}  n    verdict"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.label:<26}{format_interval(r.baseline):>24}{format_interval(r.candidate):>24}"
            f"{format_interval(r.difference, signed=True):>26}"
            f"  {r.samples:<4} {r.verdict}"
        )
    return "\n".join(lines)


def format_interval(interval: Interval, *, signed: bool = False) -> str:
    """`estimate [low, high]` to three decimals (`signed`: with + on positives, for differences)."""
    sign = "+" if signed else ""
    return f"{interval.estimate:{sign}.3f} [{interval.low:{sign}.3f}, {interval.high:{sign}.3f}]"
