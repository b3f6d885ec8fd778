"""Import speech folders into manifests: LibriSpeech layout, wav + txt pairs, or a TSV.

Audio stays where it is (rows hold absolute paths); only the manifest is written.
Layouts, detected in this order:

- LibriSpeech: `<speaker>/<chapter>/<speaker>-<chapter>.trans.txt` lines
  `<utterance-id> <TEXT>`, audio `<utterance-id>.flac` (or .wav) beside it;
- TSV: a `transcripts.tsv` (or the file passed) with `path<TAB>text` rows,
  paths relative to the TSV;
- pairs: every `x.wav` / `x.flac` with an `x.txt` beside it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import soundfile as sf

from workbench_datasets.manifest import ManifestRow

AUDIO_SUFFIXES = (".flac", ".wav")


def detect_layout(source: Path) -> str:
    """`librispeech`, `tsv` or `pairs` (raises if the folder holds none of them)."""
    if source.is_file() and source.suffix == ".tsv":
        return "tsv"
    if next(source.glob("*/*/*.trans.txt"), None) is not None:
        return "librispeech"
    if (source / "transcripts.tsv").is_file():
        return "tsv"
    if any(p.with_suffix(".txt").is_file() for p in _audio_files(source)):
        return "pairs"
    raise ValueError(
        f"{source}: no LibriSpeech *.trans.txt, no transcripts.tsv and no audio file with a .txt beside it"
    )


def folder_rows(
    source: Path, *, licence: str, split: str = "test", layout: str | None = None
) -> Iterator[ManifestRow]:
    """Manifest rows for every transcribed utterance under `source`."""
    source = source.resolve()
    layout = layout or detect_layout(source)
    pairs = {"librispeech": _librispeech, "tsv": _tsv, "pairs": _pairs}[layout](source)
    base = source.parent if source.is_file() else source
    for audio, text, speaker in pairs:
        info = sf.info(str(audio))
        yield ManifestRow(
            id=str(audio.relative_to(base).with_suffix("")),
            audio=str(audio),
            reference=text,
            duration_s=info.frames / info.samplerate,
            sample_rate_hz=info.samplerate,
            speaker=speaker,
            source=f"folder:{layout}",
            split=split,
            licence=licence,
        )


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)


def _librispeech(source: Path) -> Iterator[tuple[Path, str, str | None]]:
    for transcript in sorted(source.glob("*/*/*.trans.txt")):
        speaker = transcript.parent.parent.name
        for line in transcript.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            utterance, _, text = line.strip().partition(" ")
            audio = next(
                (
                    transcript.parent / f"{utterance}{s}"
                    for s in AUDIO_SUFFIXES
                    if (transcript.parent / f"{utterance}{s}").is_file()
                ),
                None,
            )
            if audio is None:
                raise FileNotFoundError(f"{transcript}: no audio for utterance {utterance}")
            yield audio, text.strip(), speaker


def _tsv(source: Path) -> Iterator[tuple[Path, str, str | None]]:
    table = source if source.is_file() else source / "transcripts.tsv"
    with table.open(encoding="utf-8", newline="") as handle:
        for number, record in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not record or record[0].startswith("#"):
                continue
            if len(record) < 2:
                raise ValueError(f"{table}:{number}: expected `path<TAB>text`")
            yield table.parent / record[0], record[1].strip(), None


def _pairs(source: Path) -> Iterator[tuple[Path, str, str | None]]:
    for audio in _audio_files(source):
        text_file = audio.with_suffix(".txt")
        if text_file.is_file():
            yield audio, text_file.read_text(encoding="utf-8").strip(), None
