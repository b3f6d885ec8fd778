"""Manifests: rows checked one by one; a bad row is reported with its line, the rest stay usable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from workbench_datasets.dialogues import read_dialogues
from workbench_datasets.manifest import ManifestRow, read_manifest, write_manifest

pytestmark = pytest.mark.unit


def _wav(path: Path, rate: int = 16_000, seconds: float = 0.5) -> Path:
    sf.write(str(path), np.zeros(int(rate * seconds), dtype=np.float32), rate)
    return path


def _row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": "a",
        "audio": "a.wav",
        "reference": "hello world",
        "duration_s": 0.5,
        "source": "test",
        "licence": "CC0-1.0",
    }
    row.update(overrides)
    return row


def test_bad_rows_are_reported_per_line_and_good_rows_kept(tmp_path: Path) -> None:
    _wav(tmp_path / "a.wav")
    _wav(tmp_path / "b.wav", rate=8_000)
    (tmp_path / "c.wav").write_bytes(b"RIFF not really a wav")
    _wav(tmp_path / "d.wav")
    lines = [
        json.dumps(_row()),
        json.dumps(_row(id="missing", audio="nope.wav")),
        json.dumps(_row(id="b", audio="b.wav")),  # declares 16 kHz, is 8 kHz
        json.dumps(_row(id="c", audio="c.wav")),
        json.dumps(_row(id="d", audio="d.wav", reference="  ")),
        "{not json",
        json.dumps(_row()),  # duplicate id
        json.dumps(_row(id="e", audio="d.wav", colour="red")),
        "",
    ]
    manifest_path = tmp_path / "set.jsonl"
    manifest_path.write_text("\n".join(lines))
    manifest = read_manifest(manifest_path)

    assert [r.id for r in manifest.rows] == ["a"]
    problems = {p.line: str(p) for p in manifest.problems}
    assert "audio file not found" in problems[2]
    assert "sample rate is 8000 Hz, the row declares 16000 Hz" in problems[3]
    assert "unreadable audio c.wav" in problems[4]
    assert "empty reference" in problems[5]
    assert "not JSON" in problems[6]
    assert "duplicate id" in problems[7]
    assert "colour" in problems[8]
    assert manifest.load_audio(manifest.rows[0]).shape == (8000,)


def test_dataset_id_follows_content(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    _wav(tmp_path / "x" / "a.wav")
    rows = [ManifestRow.model_validate(_row())]
    first = read_manifest(write_manifest(tmp_path / "x" / "manifest.jsonl", rows)).dataset_id
    same = read_manifest(write_manifest(tmp_path / "x" / "manifest.jsonl", rows)).dataset_id
    edited = [rows[0].model_copy(update={"reference": "hello there"})]
    changed = read_manifest(write_manifest(tmp_path / "x" / "manifest.jsonl", edited)).dataset_id
    assert len(read_manifest(tmp_path / "x" / "manifest.jsonl").rows) == 1
    assert first == same
    assert first.startswith("x@")  # named after the dataset folder
    assert changed != first


def test_no_speech_rows_need_an_empty_reference() -> None:
    ManifestRow.model_validate(_row(reference="", speech=False))
    with pytest.raises(ValueError, match="no-speech clip must have an empty reference"):
        ManifestRow.model_validate(_row(speech=False))


def test_dialogues_must_end_with_the_user(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    good = {"id": "g", "source": "t", "messages": [{"role": "user", "content": "Hi"}]}
    bad = {
        "id": "b",
        "source": "t",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
    }
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    dataset_id, dialogues, problems = read_dialogues(path)
    assert [d.id for d in dialogues] == ["g"]
    assert problems[0].line == 2
    assert "last message must be the user's" in problems[0].reason
    assert dataset_id.startswith("d@")


def test_shipped_sample_dialogues_are_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    _, dialogues, problems = read_dialogues(root / "datasets" / "samples" / "dialogues.jsonl")
    assert not problems
    assert len(dialogues) >= 5
