"""Real speech for tests: Debian's pocketsphinx-testdata recordings and their transcripts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from workbench_datasets.pocketsphinx import available, pocketsphinx_rows


@dataclass(frozen=True)
class Utterance:
    """A recording (16 kHz mono wav) and what was said."""

    path: Path
    reference: str


def pocketsphinx_utterances() -> list[Utterance]:
    """The 10 LibriVox and "cards" recordings of real people, with transcripts."""
    if not available():
        pytest.skip(
            "Debian package pocketsphinx-testdata is not installed (./dev test installs it)"
        )
    return [Utterance(Path(row.audio), row.reference) for row in pocketsphinx_rows()]
