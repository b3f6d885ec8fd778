"""Real speech for tests: Debian's pocketsphinx-testdata recordings and their transcripts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

DATA = Path("/usr/share/pocketsphinx/test/data")


@dataclass(frozen=True)
class Utterance:
    """A recording (16 kHz mono wav) and what was said."""

    path: Path
    reference: str


def pocketsphinx_utterances() -> list[Utterance]:
    """The 10 LibriVox and "cards" recordings of real people, with transcripts."""
    if not DATA.exists():
        pytest.skip(
            "Debian package pocketsphinx-testdata is not installed (./dev test installs it)"
        )
    utterances = []
    for folder, transcripts in (("librivox", "transcription"), ("cards", "cards.transcription")):
        for line in (DATA / folder / transcripts).read_text().splitlines():
            match = re.match(r"<s>(.*)</s>\s*\((.+)\)", line.strip())
            if match:
                utterances.append(Utterance(DATA / folder / f"{match[2]}.wav", match[1].strip()))
    return utterances
