"""Live experiment arms with intervals that resample conversations, not turns.

The turns of one conversation share its caller, room and prompt; taken as
independent samples they give intervals far too narrow (an arm with two long
conversations would look certain). Each arm's voice-to-voice mean and interruption
rate are ratios of sums over its conversations, and their 95% intervals come from a
bootstrap over those conversations.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from evals.stats import bootstrap_ci, ratio_of_sums

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
