"""Bootstrap confidence intervals: for one run's metric, and for the difference of two paired runs.

Eval sets are small (tens to hundreds of samples); a percentile bootstrap over
samples is the honest error bar for corpus metrics such as WER (a ratio of
sums, not a mean of per-sample rates). Seeded, so a table prints the same twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Statistic = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Interval:
    """A point estimate and its (1 - alpha) percentile-bootstrap interval."""

    estimate: float
    low: float
    high: float

    def excludes(self, value: float) -> bool:
        """True when `value` lies outside the interval (a significant difference from it)."""
        return value < self.low or value > self.high


def bootstrap_ci(
    data: np.ndarray,
    statistic: Statistic,
    *,
    resamples: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Interval:
    """CI of `statistic(data)`, resampling rows of `data` (so ratio statistics stay paired)."""
    data = np.asarray(data)
    if len(data) == 0:
        raise ValueError("no samples to bootstrap")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(data), size=(resamples, len(data)))
    draws = np.array([statistic(data[p]) for p in picks])
    return Interval(
        estimate=float(statistic(data)),
        low=float(np.nanpercentile(draws, 100 * alpha / 2)),
        high=float(np.nanpercentile(draws, 100 * (1 - alpha / 2))),
    )


def paired_difference(
    a: np.ndarray,
    b: np.ndarray,
    statistic: Statistic,
    *,
    resamples: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Interval:
    """CI of statistic(b) - statistic(a) where row i of a and b is the same sample."""
    a, b = np.asarray(a), np.asarray(b)
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} vs {len(b)}")
    paired = np.concatenate([a.reshape(len(a), -1), b.reshape(len(b), -1)], axis=1)
    width = paired.shape[1] // 2

    def difference(rows: np.ndarray) -> float:
        return statistic(_squeeze(rows[:, width:])) - statistic(_squeeze(rows[:, :width]))

    return bootstrap_ci(paired, difference, resamples=resamples, alpha=alpha, seed=seed)


def independent_difference(
    a: np.ndarray,
    b: np.ndarray,
    statistic: Statistic,
    *,
    resamples: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[Interval, float]:
    """CI of statistic(b) - statistic(a) for two independent groups, and its bootstrap SE.

    Each group's rows (its independent units: conversations of an experiment arm) are
    resampled apart, as the arms were sampled apart.
    """
    a, b = np.asarray(a), np.asarray(b)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("no samples to bootstrap")
    rng = np.random.default_rng(seed)
    draws = np.array(
        [
            statistic(b[rng.integers(0, len(b), len(b))])
            - statistic(a[rng.integers(0, len(a), len(a))])
            for _ in range(resamples)
        ]
    )
    interval = Interval(
        estimate=float(statistic(b) - statistic(a)),
        low=float(np.nanpercentile(draws, 100 * alpha / 2)),
        high=float(np.nanpercentile(draws, 100 * (1 - alpha / 2))),
    )
    return interval, float(np.nanstd(draws))


def _squeeze(rows: np.ndarray) -> np.ndarray:
    return rows[:, 0] if rows.shape[1] == 1 else rows


def ratio_of_sums(rows: np.ndarray) -> float:
    """sum(column 0) / sum(column 1): corpus WER from (errors, reference words) rows."""
    total = float(rows[:, 1].sum())
    return float(rows[:, 0].sum()) / total if total else float("nan")


def mean(rows: np.ndarray) -> float:
    """Mean of a 1-D sample."""
    return float(np.mean(rows))


def median(rows: np.ndarray) -> float:
    """Median of a 1-D sample."""
    return float(np.median(rows))
