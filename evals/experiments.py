"""Live experiment arms with intervals that resample conversations, not turns, and decisions.

The turns of one conversation share its caller, room and prompt; taken as
independent samples they give intervals far too narrow (an arm with two long
conversations would look certain). Each arm's voice-to-voice mean and interruption
rate are ratios of sums over its conversations, and their 95% intervals come from a
bootstrap over those conversations.

`decisions` compares every arm with the experiment's first (by label) on each
metric: the difference with its interval (each arm's conversations resampled
apart), the smallest difference the data can detect now, and a verdict in words
("v2 faster by 0.21 s [0.08, 0.35]", or how many more conversations it needs).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evals.stats import Interval, bootstrap_ci, independent_difference, mean, ratio_of_sums

ARM_COLUMNS = [
    "experiment",
    "label",
    "conversations",
    "turns",
    "v2v_mean_s",
    "v2v_low_s",
    "v2v_high_s",
    "interruption_rate",
    "interruption_low",
    "interruption_high",
]


def arm_summaries(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per arm from `AnalyticsRepo.experiment_arms`' per-conversation rows."""
    arms: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        arms[(row["experiment"], row["label"])].append(row)
    out = []
    for (experiment, label), talks in sorted(arms.items()):
        latency = np.array([[t["v2v_sum_s"], t["v2v_turns"]] for t in talks], dtype=float)
        interrupted = np.array([[t["interrupted"], t["turns"]] for t in talks], dtype=float)
        v2v = bootstrap_ci(latency, ratio_of_sums) if latency[:, 1].sum() else None
        cut = bootstrap_ci(interrupted, ratio_of_sums)
        out.append(
            {
                "experiment": experiment,
                "label": label,
                "conversations": len(talks),
                "turns": int(interrupted[:, 1].sum()),
                "v2v_mean_s": v2v.estimate if v2v else None,
                "v2v_low_s": v2v.low if v2v else None,
                "v2v_high_s": v2v.high if v2v else None,
                "interruption_rate": cut.estimate,
                "interruption_low": cut.low,
                "interruption_high": cut.high,
            }
        )
    return pd.DataFrame(out, columns=ARM_COLUMNS)


# Power 80% at a two-sided 5% level: a true difference of (1.96 + 0.84) standard
# errors is found four times in five; smaller ones mostly are not.
DETECTABLE_SE = 2.8
# Below this many conversations in an arm an interval means little: no verdict.
MIN_CONVERSATIONS = 5


@dataclass(frozen=True)
class ArmMetric:
    """A per-arm measure over conversations, and the words its verdicts use."""

    name: str
    columns: tuple[str, ...]
    statistic: Callable[[np.ndarray], float]
    lower_is_better: bool
    better: str  # "faster"
    worse: str  # "slower"
    unit: str = ""
    scale: float = 1.0  # shown as value * scale (rates as percentage points)


ARM_METRICS = [
    ArmMetric(
        "voice-to-voice", ("v2v_sum_s", "v2v_turns"), ratio_of_sums, True, "faster", "slower", " s"
    ),
    ArmMetric(
        "interruption rate",
        ("interrupted", "turns"),
        ratio_of_sums,
        True,
        "interrupted less",
        "interrupted more",
        " points",
        100.0,
    ),
    ArmMetric("rating", ("rating",), mean, False, "rated higher", "rated lower"),
]


@dataclass(frozen=True)
class ArmDecision:
    """One arm against the baseline arm on one metric."""

    experiment: str
    metric: ArmMetric
    baseline: str
    arm: str
    difference: Interval  # arm - baseline
    standard_error: float
    n_baseline: int
    n_arm: int

    @property
    def detectable(self) -> float:
        """The smallest difference these conversations would find four times in five."""
        return DETECTABLE_SE * self.standard_error

    @property
    def more_needed(self) -> int | None:
        """About how many more conversations per arm would detect the observed difference."""
        observed = abs(self.difference.estimate)
        if observed == 0 or self.detectable <= observed:
            return None
        n = (self.n_baseline + self.n_arm) / 2
        return math.ceil(n * (self.detectable / observed) ** 2 - n)

    @property
    def verdict(self) -> str:
        m, d = self.metric, self.difference
        if min(self.n_baseline, self.n_arm) < MIN_CONVERSATIONS:
            return (
                f"not enough data: {self.arm} has {self.n_arm} and {self.baseline} "
                f"{self.n_baseline} conversations ({MIN_CONVERSATIONS} each at least)"
            )
        gain = -1.0 if m.lower_is_better else 1.0  # improvement = gain * difference
        low, high = sorted((gain * d.low * m.scale, gain * d.high * m.scale))
        shown = f"[{low:.2f}, {high:.2f}]"
        if d.excludes(0.0):
            improved = gain * d.estimate > 0
            word = m.better if improved else m.worse
            return f"{self.arm} {word} by {abs(d.estimate) * m.scale:.2f}{m.unit} {shown}"
        needed = self.more_needed
        more = f"; about {needed} more conversations per arm to tell" if needed else ""
        return (
            f"no clear difference ({gain * d.estimate * m.scale:+.2f}{m.unit} {shown}); "
            f"detectable now: {self.detectable * m.scale:.2f}{m.unit}{more}"
        )


def decisions(rows: list[dict[str, Any]]) -> list[ArmDecision]:
    """Every arm against its experiment's first arm (by label), on every metric with data."""
    arms: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        arms[row["experiment"]][row["label"]].append(row)
    out = []
    for experiment, by_label in sorted(arms.items()):
        baseline, *others = sorted(by_label)
        for label in others:
            for metric in ARM_METRICS:
                a = _units(by_label[baseline], metric)
                b = _units(by_label[label], metric)
                if not len(a) or not len(b):
                    continue
                interval, se = independent_difference(a, b, metric.statistic)
                out.append(
                    ArmDecision(experiment, metric, baseline, label, interval, se, len(a), len(b))
                )
    return out


def _units(conversations: list[dict[str, Any]], metric: ArmMetric) -> np.ndarray:
    """The metric's columns per conversation that has them (a 1-D array for one column)."""
    rows = [
        [c[col] for col in metric.columns]
        for c in conversations
        if all(c.get(col) is not None for col in metric.columns)
        and (len(metric.columns) == 1 or c[metric.columns[1]])
    ]
    data = np.array(rows, dtype=float).reshape(len(rows), len(metric.columns))
    return data[:, 0] if len(metric.columns) == 1 else data


def synthetic_arm(
    rng: np.random.Generator,
    label: str,
    conversations: int,
    v2v_mean_s: float,
    *,
    experiment: str = "synthetic",
    between_sd_s: float = 0.15,
    within_sd_s: float = 0.05,
    turns: int = 5,
    rating: float | None = None,
) -> list[dict[str, Any]]:
    """Rows like `AnalyticsRepo.experiment_arms`' for an arm whose true mean is known.

    Each conversation has a pace of its own (its caller and room: `between_sd_s`)
    shared by its turns (`within_sd_s` around it), the structure that makes turns
    of one conversation dependent. For checking intervals' coverage (the tests and
    notebooks/06_live_ab_decisions.ipynb), not for analysis.
    """
    rows = []
    for i in range(conversations):
        pace = rng.normal(v2v_mean_s, between_sd_s)
        heard = np.clip(rng.normal(pace, within_sd_s, size=turns), 0.05, None)
        rows.append(
            {
                "experiment": experiment,
                "label": label,
                "conversation_id": f"{label}-{i}",
                "turns": turns,
                "v2v_sum_s": float(heard.sum()),
                "v2v_turns": turns,
                "interrupted": int(rng.random() < 0.1),
                "rating": rating,
            }
        )
    return rows
