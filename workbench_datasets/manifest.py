"""Speech dataset manifests: one JSON object per line, one utterance per object.

A row names its audio (a path, relative to the manifest's folder or absolute;
builders that read from the object store, such as the conversation export,
copy the audio next to the manifest so the dataset is a stable snapshot), what
was said, and where it came from. A dataset is identified by its name and the
hash of its rows (`<name>@<sha12>`), so a result always says exactly which data
it was measured on; editing a row gives a new id.

Rows are checked one by one: a bad row (missing file, unreadable audio, a
sample rate other than the declared one, an empty reference for speech) is
reported with its line number and the rest of the dataset stays usable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workbench.audio import SPEECH_RATE_HZ, read_audio

ReferenceKind = Literal["human", "live_transcript", "script"]


class ManifestRow(BaseModel):
    """One utterance of a dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=300)
    audio: str = Field(min_length=1, description="path, absolute or relative to the manifest")
    reference: str = Field(description="what was said; empty only for no-speech clips")
    duration_s: float = Field(gt=0)
    sample_rate_hz: int = Field(SPEECH_RATE_HZ, gt=0)
    speaker: str | None = None
    source: str = Field(min_length=1, description="builder or corpus the row came from")
    split: Literal["train", "dev", "test"] = "test"
    licence: str = Field(min_length=1)
    speech: bool = Field(True, description="False for silence/noise clips (hallucination checks)")
    reference_kind: ReferenceKind = "human"

    @model_validator(mode="after")
    def _reference_matches_speech(self) -> ManifestRow:
        if self.speech and not self.reference.strip():
            raise ValueError(
                "empty reference for a speech clip (mark no-speech clips speech=false)"
            )
        if not self.speech and self.reference.strip():
            raise ValueError("a no-speech clip must have an empty reference")
        return self


@dataclass(frozen=True)
class RowProblem:
    """Why one line of a manifest cannot be used."""

    line: int
    row_id: str | None
    reason: str

    def __str__(self) -> str:
        return (
            f"line {self.line}" + (f" ({self.row_id})" if self.row_id else "") + f": {self.reason}"
        )


@dataclass(frozen=True)
class Manifest:
    """The usable rows of a manifest file, its id, and the rows that were rejected."""

    path: Path
    dataset_id: str
    rows: tuple[ManifestRow, ...]
    problems: tuple[RowProblem, ...]

    def audio_path(self, row: ManifestRow) -> Path:
        """The row's audio file as an absolute path."""
        return _resolve(self.path, row)

    def load_audio(self, row: ManifestRow) -> np.ndarray:
        """The row's audio as 16 kHz mono float32."""
        return read_audio(self.audio_path(row))

    def first(self, limit: int) -> Manifest:
        """The first `limit` rows, as a dataset of their own (its id names those rows)."""
        rows = self.rows[:limit]
        return replace(self, rows=rows, dataset_id=dataset_id(self.dataset_id.split("@")[0], rows))


def dataset_id(name: str, rows: Sequence[ManifestRow]) -> str:
    """`<name>@<first 12 hex of the rows' hash>`: the same rows give the same id."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(row.model_dump_json().encode())
        digest.update(b"\n")
    return f"{name}@{digest.hexdigest()[:12]}"


def dataset_name(path: Path) -> str:
    """The name a manifest file stands for: its folder for `<name>/manifest.jsonl`, else its stem."""
    return path.parent.name if path.stem == "manifest" else path.stem


def write_manifest(path: Path, rows: Iterable[ManifestRow]) -> Path:
    """Write rows as JSONL (atomically: a reader never sees half a manifest)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(row.model_dump_json(exclude_defaults=False) + "\n")
    tmp.replace(path)
    return path


def read_manifest(
    path: str | Path, *, check_audio: bool = True, name: str | None = None
) -> Manifest:
    """Parse and check a manifest; bad rows go to `problems`, never raise.

    With `check_audio`, files must exist, be readable audio and have the
    declared sample rate.
    """
    path = Path(path)
    rows: list[ManifestRow] = []
    problems: list[RowProblem] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(RowProblem(number, None, f"not JSON: {exc.msg}"))
            continue
        row_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            row = ManifestRow.model_validate(raw)
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in exc.errors()
            )
            problems.append(RowProblem(number, row_id, reasons))
            continue
        if row.id in seen:
            problems.append(RowProblem(number, row.id, "duplicate id"))
            continue
        reason = _audio_problem(path, row) if check_audio else None
        if reason:
            problems.append(RowProblem(number, row.id, reason))
            continue
        seen.add(row.id)
        rows.append(row)
    return Manifest(
        path=path,
        dataset_id=dataset_id(name or dataset_name(path), rows),
        rows=tuple(rows),
        problems=tuple(problems),
    )


def _resolve(manifest_path: Path, row: ManifestRow) -> Path:
    audio = Path(row.audio)
    return audio if audio.is_absolute() else (manifest_path.parent / audio).resolve()


def _audio_problem(manifest_path: Path, row: ManifestRow) -> str | None:
    audio = _resolve(manifest_path, row)
    if not audio.is_file():
        return f"audio file not found: {audio}"
    try:
        info = sf.info(str(audio))
    except (sf.LibsndfileError, RuntimeError) as exc:
        return f"unreadable audio {audio.name}: {exc}"
    if info.samplerate != row.sample_rate_hz:
        return f"sample rate is {info.samplerate} Hz, the row declares {row.sample_rate_hz} Hz"
    return None
