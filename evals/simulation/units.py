"""A simulation's independent unit is the scenario: its calls' rows averaged into one row each.

The turns of one call share a conversation, and the repeated calls of one
scenario share its caller and script, so neither is an independent sample; a
bootstrap over them would give intervals far too narrow. Comparisons resample
scenarios (`evals.compare`), each the mean of its calls.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from workbench.db.models import EvalSample

ROW_SEPARATOR = "#"  # a call's row is `<scenario>#<repeat>`
CALLS_FOLDER = "calls"  # in a simulation's run folder: each call's audio
# The per-call metrics averaged over a scenario's calls.
AVERAGED = (
    "passed",
    "heard_v2v_mean_s",
    "live_wer",
    "relevance",
    "max_reply_similarity",
    "talk_over_pauses_s",
)


def scenario_of(sample_id: str) -> str:
    """The scenario a call's row belongs to."""
    return sample_id.split(ROW_SEPARATOR)[0]


def scenario_units(samples: list[EvalSample]) -> list[EvalSample]:
    """One row per scenario: the mean of each metric over its calls held (errored calls left out)."""
    calls: dict[str, list[EvalSample]] = defaultdict(list)
    for sample in samples:
        if sample.error is None:
            calls[scenario_of(sample.sample_id)].append(sample)
    units = []
    for scenario, rows in sorted(calls.items()):
        metrics = {}
        for name in AVERAGED:
            values = [r.metrics[name] for r in rows if r.metrics.get(name) is not None]
            metrics[name] = float(np.mean(values)) if values else None
        units.append(EvalSample(sample_id=scenario, metrics={**metrics, "calls": len(rows)}))
    return units
