"""Real recorded speech from Debian's `pocketsphinx-testdata` as a manifest.

Ten 16 kHz recordings of real people with their transcripts: five LibriVox
readings (Sense and Sensibility) and five "cards" utterances.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import soundfile as sf

from workbench_datasets.manifest import ManifestRow

DATA = Path("/usr/share/pocketsphinx/test/data")
LICENCE = "BSD-2-Clause (CMU Sphinx test data; LibriVox recordings are public domain)"
INSTALL_HINT = "install the Debian package: apt-get install pocketsphinx-testdata"


def available(data: Path = DATA) -> bool:
    """Whether the Debian package's recordings are on this machine."""
    return (data / "librivox" / "transcription").is_file()


def pocketsphinx_rows(data: Path = DATA) -> Iterator[ManifestRow]:
    """One row per transcribed recording (raises with the install command if absent)."""
    if not available(data):
        raise FileNotFoundError(f"{data} has no recordings: {INSTALL_HINT}")
    for folder, transcripts in (("librivox", "transcription"), ("cards", "cards.transcription")):
        for line in (data / folder / transcripts).read_text().splitlines():
            match = re.match(r"<s>(.*)</s>\s*\((.+)\)", line.strip())
            if not match:
                continue
            audio = data / folder / f"{match[2]}.wav"
            info = sf.info(str(audio))
            yield ManifestRow(
                id=f"{folder}/{match[2]}",
                audio=str(audio),
                reference=match[1].strip().lower(),
                duration_s=info.frames / info.samplerate,
                sample_rate_hz=info.samplerate,
                speaker="librivox-reader" if folder == "librivox" else None,
                source=f"pocketsphinx-testdata:{folder}",
                licence=LICENCE,
            )
