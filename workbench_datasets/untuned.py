"""The untuned speech set: voices, speeds and noise no model setting was chosen on.

Settings such as the STT's short encoder window were chosen on the packaged
recordings and the piper voice at its own speed. This set checks them
elsewhere: held-out sentences (`datasets/samples/untuned-requests.txt`) spoken
by flite's three voices and espeak-ng, piper slowed down and sped up, speech
under white noise, and the real recordings of Debian's pocketsphinx-testdata.
Each row's id starts with its condition (`flite-awb/0003`, `librivox/...`), so
results can be broken down by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.config import REPO_ROOT
from workbench.models import TextToSpeech, load_model, load_spec
from workbench.models.seeding import seed_generators
from workbench_datasets.manifest import ManifestRow
from workbench_datasets.pocketsphinx import pocketsphinx_rows
from workbench_datasets.synthetic import read_sentences, synthetic_rows

SENTENCES = REPO_ROOT / "datasets" / "samples" / "untuned-requests.txt"
_SPECS = REPO_ROOT / "configs" / "models"


@dataclass(frozen=True)
class Condition:
    """One way of speaking the sentences: a TTS spec, a speed factor, optional noise."""

    voice: str
    speed: float = 1.0
    snr_db: float | None = None

    @property
    def name(self) -> str:
        speed = "" if self.speed == 1.0 else f"-x{self.speed:g}"
        noise = "" if self.snr_db is None else f"-snr{self.snr_db:g}"
        return f"{self.voice}{speed}{noise}"


CONDITIONS = (
    Condition("flite-slt"),
    Condition("flite-rms"),
    Condition("flite-awb"),
    Condition("espeak-ng-en-us"),
    Condition("piper-joe-medium", speed=0.8),
    Condition("piper-joe-medium", speed=1.25),
    Condition("piper-joe-medium", snr_db=10),
    Condition("flite-slt", snr_db=20),
)


def condition_of(row: ManifestRow) -> str:
    """The condition a row of this set was made under (its id's first part)."""
    return row.id.split("/", 1)[0]


async def untuned_rows(
    out_dir: Path,
    *,
    sentences: Sequence[str] | None = None,
    conditions: Sequence[Condition] = CONDITIONS,
    recordings: bool = True,
    seed: int = 0,
) -> list[ManifestRow]:
    """Speak `sentences` (default: the held-out list) under every condition, plus the recordings."""
    sentences = list(sentences) if sentences is not None else read_sentences(SENTENCES)
    voices: dict[str, TextToSpeech] = {}
    rows: list[ManifestRow] = []
    for condition in conditions:
        if condition.voice not in voices:
            seed_generators(seed)  # the same set in every process (VITS voices sample noise)
            voice = load_model(load_spec(_SPECS / f"{condition.voice}.yaml"))
            if not isinstance(voice, TextToSpeech):
                raise TypeError(f"{condition.voice} is not a text-to-speech spec")
            voices[condition.voice] = voice
        spoken = await synthetic_rows(
            sentences,
            [voices[condition.voice]],
            out_dir / condition.name,
            speeds=(condition.speed,),
            snr_db=condition.snr_db,
            seed=seed,
        )
        for index, row in enumerate(spoken):
            rows.append(
                row.model_copy(
                    update={
                        "id": f"{condition.name}/{index:04d}",
                        "audio": f"{condition.name}/{row.audio}",
                    }
                )
            )
    for voice in voices.values():
        await voice.aclose()
    if recordings:
        rows += pocketsphinx_rows()
    return rows
