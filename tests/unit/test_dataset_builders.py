"""Dataset builders: folder layouts, Debian's recordings, synthetic speech with perturbations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from workbench.audio import SPEECH_RATE_HZ
from workbench.models import ModelSpec, TextToSpeech, load_model
from workbench_datasets import pocketsphinx
from workbench_datasets.folder import detect_layout, folder_rows
from workbench_datasets.manifest import read_manifest, write_manifest
from workbench_datasets.synthetic import add_noise, change_speed, synthetic_rows

pytestmark = pytest.mark.unit

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "models"


def _tone(path: Path, rate: int = 16_000, seconds: float = 0.3) -> None:
    t = np.arange(int(rate * seconds)) / rate
    sf.write(str(path), 0.1 * np.sin(2 * np.pi * 220 * t), rate)


def test_librispeech_layout(tmp_path: Path) -> None:
    chapter = tmp_path / "1272" / "128104"
    chapter.mkdir(parents=True)
    for n in range(2):
        _tone(chapter / f"1272-128104-000{n}.flac")
    (chapter / "1272-128104.trans.txt").write_text(
        "1272-128104-0000 MISTER QUILTER IS THE APOSTLE\n1272-128104-0001 NOR IS MISTER QUILTER'S MANNER\n"
    )
    assert detect_layout(tmp_path) == "librispeech"
    rows = list(folder_rows(tmp_path, licence="CC-BY-4.0"))
    assert [r.reference for r in rows] == [
        "MISTER QUILTER IS THE APOSTLE",
        "NOR IS MISTER QUILTER'S MANNER",
    ]
    assert {r.speaker for r in rows} == {"1272"}
    assert rows[0].duration_s == pytest.approx(0.3)


def test_tsv_and_pairs_layouts(tmp_path: Path) -> None:
    tsv_dir = tmp_path / "tsv"
    (tsv_dir / "clips").mkdir(parents=True)
    _tone(tsv_dir / "clips" / "one.wav", rate=22_050)
    (tsv_dir / "transcripts.tsv").write_text("# path\ttext\nclips/one.wav\thello there\n")
    (row,) = folder_rows(tsv_dir, licence="x")
    assert (row.reference, row.sample_rate_hz) == ("hello there", 22_050)

    pairs = tmp_path / "pairs"
    pairs.mkdir()
    _tone(pairs / "a.wav")
    (pairs / "a.txt").write_text("good morning\n")
    _tone(pairs / "untranscribed.wav")
    assert detect_layout(pairs) == "pairs"
    assert [r.reference for r in folder_rows(pairs, licence="x")] == ["good morning"]
    # A manifest of rows at another sample rate reads back and resamples on load.
    manifest = read_manifest(
        write_manifest(tmp_path / "m.jsonl", folder_rows(tsv_dir, licence="x"))
    )
    assert not manifest.problems
    assert manifest.load_audio(manifest.rows[0]).size == pytest.approx(0.3 * SPEECH_RATE_HZ, abs=2)


def test_unknown_layout_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no LibriSpeech \*\.trans\.txt"):
        detect_layout(tmp_path)


def test_pocketsphinx_recordings() -> None:
    if not pocketsphinx.available():
        pytest.skip(pocketsphinx.INSTALL_HINT)
    rows = list(pocketsphinx.pocketsphinx_rows())
    assert len(rows) == 10
    assert all(r.sample_rate_hz == 16_000 and r.reference for r in rows)


def test_speed_and_noise_perturbation() -> None:
    t = np.arange(SPEECH_RATE_HZ) / SPEECH_RATE_HZ
    tone = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    assert change_speed(tone, 1.25).size == pytest.approx(SPEECH_RATE_HZ / 1.25, abs=2)
    noisy = add_noise(tone, 10.0, np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(tone**2) / np.mean((noisy - tone) ** 2))
    assert snr == pytest.approx(10.0, abs=0.5)
    with pytest.raises(ValueError, match="positive"):
        change_speed(tone, 0)


async def test_synthetic_dataset_with_two_voices_and_no_speech_clips(tmp_path: Path) -> None:
    fake = load_model(ModelSpec(name="fake-tts", kind="tts", backend="fake", model="fake"))
    espeak = load_model(CONFIGS / "espeak-ng-en-us.yaml")
    assert isinstance(fake, TextToSpeech)
    assert isinstance(espeak, TextToSpeech)
    rows = await synthetic_rows(
        ["Good morning.", "See you soon."],
        [fake, espeak],
        tmp_path,
        speeds=(0.9, 1.1),
        snr_db=20,
        no_speech_clips=2,
        seed=3,
    )
    assert len(rows) == 2 * 2 * 2 + 2
    manifest = read_manifest(write_manifest(tmp_path / "manifest.jsonl", rows))
    assert not manifest.problems
    silent = [r for r in manifest.rows if not r.speech]
    assert [r.reference for r in silent] == ["", ""]
    slow = next(r for r in rows if r.id == "0000-espeak-ng-en-us-x0.9-snr20")
    fast = next(r for r in rows if r.id == "0000-espeak-ng-en-us-x1.1-snr20")
    assert slow.duration_s / fast.duration_s == pytest.approx(1.1 / 0.9, rel=0.02)
    # Seeded: the same arguments give the same audio, noise included.
    for folder in ("one", "two"):
        await synthetic_rows(["Good morning."], [espeak], tmp_path / folder, snr_db=20, seed=3)
    name = "audio/0000-espeak-ng-en-us-x1-snr20.wav"
    one, two = sf.read(str(tmp_path / "one" / name))[0], sf.read(str(tmp_path / "two" / name))[0]
    assert one.size > 0
    assert np.array_equal(one, two)
