"""A persona's line is what its file says, measured on the produced audio: rate, SNR, band, level, pauses."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from evals.simulation.impairments import (
    NOISE_LEAD_S,
    measured_band_share,
    measured_level_dbfs,
    measured_rate,
    measured_snr_db,
    render_turn,
    room_tone,
)
from evals.simulation.suite import Noise, Persona
from workbench.audio import SPEECH_RATE_HZ, resample, to_float32
from workbench.config import REPO_ROOT
from workbench.metrics.wer import error_rates
from workbench.models.base import SpeechToText, TextToSpeech
from workbench.models.registry import load_model
from workbench.models.spec import load_spec

pytestmark = pytest.mark.unit

SENTENCE = "I would like to book a table for four people tonight at eight."


@pytest.fixture(scope="module")
def voice() -> tuple[np.ndarray, int]:
    tts = load_model(load_spec(REPO_ROOT / "configs/models/piper-joe-medium.yaml"))
    assert isinstance(tts, TextToSpeech)
    chunk = asyncio.run(tts.synthesize_all(SENTENCE))
    return to_float32(chunk.pcm), chunk.sample_rate_hz


@pytest.mark.parametrize("rate", [0.75, 1.3])
def test_speaking_rate_is_measured_on_the_audio(voice: tuple[np.ndarray, int], rate: float) -> None:
    speech, hz = voice
    plain = render_turn([speech], hz, Persona())
    faster = render_turn([speech], hz, Persona(rate=rate))
    assert measured_rate(plain.samples, faster.samples, hz) == pytest.approx(rate, rel=0.05)


def test_a_faster_caller_still_says_the_words(voice: tuple[np.ndarray, int]) -> None:
    """The stretch keeps the words intelligible (pitch kept), as Whisper hears them."""
    speech, hz = voice
    stt = load_model(load_spec(REPO_ROOT / "configs/models/whisper-tiny-en-ct2.yaml"))
    assert isinstance(stt, SpeechToText)
    for rate in (0.8, 1.3):
        turn = render_turn([speech], hz, Persona(rate=rate))
        # followed by silence, as on a call (Whisper drops words cut off at the very end)
        audio = np.pad(resample(turn.samples, hz, SPEECH_RATE_HZ), (0, SPEECH_RATE_HZ // 2))
        heard = asyncio.run(stt.transcribe(audio))
        assert error_rates([SENTENCE], [heard.text]).wer <= 0.15, (rate, heard.text)


@pytest.mark.parametrize(("kind", "snr_db"), [("white", 5.0), ("pink", 15.0), ("brown", 30.0)])
def test_noise_is_mixed_at_the_personas_snr(
    voice: tuple[np.ndarray, int], kind: str, snr_db: float
) -> None:
    speech, hz = voice
    turn = render_turn([speech], hz, Persona(noise=Noise(kind=kind, snr_db=snr_db)), seed=3)
    assert turn.words[0] == pytest.approx(NOISE_LEAD_S)  # noise alone comes first
    assert measured_snr_db(turn.samples, hz, turn.words) == pytest.approx(snr_db, abs=1.0)


def test_a_phone_line_carries_only_its_band(voice: tuple[np.ndarray, int]) -> None:
    speech, hz = voice
    wide = render_turn([speech], hz, Persona())
    phone = render_turn([speech], hz, Persona(telephone=True))
    assert measured_band_share(wide.samples, hz, 300, 3400) < 0.9  # the voice has more
    assert measured_band_share(phone.samples, hz, 300, 3400) > 0.99
    assert measured_band_share(phone.samples, hz, 4000, hz / 2) < 0.001


@pytest.mark.parametrize("dbfs", [-40.0, -23.0, -18.0])
def test_speech_is_at_the_personas_level(voice: tuple[np.ndarray, int], dbfs: float) -> None:
    speech, hz = voice
    turn = render_turn([speech], hz, Persona(loudness_dbfs=dbfs))
    assert measured_level_dbfs(turn.samples, hz, turn.words) == pytest.approx(dbfs, abs=0.5)


def test_pauses_are_silent_and_between_the_parts(voice: tuple[np.ndarray, int]) -> None:
    speech, hz = voice
    turn = render_turn([speech, speech], hz, Persona(pause_s=1.5))
    ((start, end),) = turn.pauses
    assert end - start == pytest.approx(1.5, abs=0.01)
    assert turn.words[0] < start < end < turn.words[1]
    assert np.abs(turn.samples[int(start * hz) : int(end * hz)]).max() == 0.0
    # ... between two parts that are speech
    before = turn.samples[int(turn.words[0] * hz) : int(start * hz)]
    after = turn.samples[int(end * hz) : int(turn.words[1] * hz)]
    assert np.abs(before).max() > 0.05
    assert np.abs(after).max() > 0.05


def test_the_same_seed_gives_the_same_audio(voice: tuple[np.ndarray, int]) -> None:
    speech, hz = voice
    persona = Persona(noise=Noise(kind="pink", snr_db=10))
    a = render_turn([speech], hz, persona, seed=1)
    b = render_turn([speech], hz, persona, seed=1)
    c = render_turn([speech], hz, persona, seed=2)
    assert np.array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)


def test_a_noisy_callers_room_is_noisy_between_turns_too(voice: tuple[np.ndarray, int]) -> None:
    speech, hz = voice
    persona = Persona(noise=Noise(kind="pink", snr_db=15), loudness_dbfs=-25)
    tone = room_tone(persona, hz, seed=1)
    assert tone is not None
    between = np.concatenate([tone(hz // 10) for _ in range(20)])  # 2 s, as the client asks
    turn = render_turn([speech], hz, persona, seed=1)
    lead = turn.samples[: int(NOISE_LEAD_S * hz)]  # the noise under the turn, before its words
    level = 10 * np.log10(np.mean(between.astype(np.float64) ** 2))
    assert level == pytest.approx(-25 - 15, abs=1.0)
    assert level == pytest.approx(10 * np.log10(np.mean(lead.astype(np.float64) ** 2)), abs=1.5)
    assert room_tone(Persona(), hz) is None  # a quiet room sends silence
