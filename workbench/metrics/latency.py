"""Latency summaries: the percentiles every table and plot of the workbench reports."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def percentiles(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """n, mean, p50, p95 and max of the finite values (None entries are skipped)."""
    data = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if data.size == 0:
        return {"n": 0, "mean": None, "p50": None, "p95": None, "max": None}
    return {
        "n": int(data.size),
        "mean": float(data.mean()),
        "p50": float(np.percentile(data, 50)),
        "p95": float(np.percentile(data, 95)),
        "max": float(data.max()),
    }
