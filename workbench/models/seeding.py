"""Reproducible synthesis: seed the generators that stochastic voices draw from.

VITS voices (Piper through onnxruntime, MMS through torch) sample noise for each
utterance, so the same text sounds different from one process to the next and a
dataset built twice differs. onnxruntime gives each random operator its
generator when a model is loaded, from its global seed: so seed, then load.
"""

from __future__ import annotations

import sys


def seed_generators(seed: int) -> None:
    """Seed onnxruntime's generators (and torch's, when it is in use) for models loaded next."""
    try:
        import onnxruntime
    except ImportError:  # no onnxruntime voice can be loaded either
        pass
    else:
        onnxruntime.set_seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
