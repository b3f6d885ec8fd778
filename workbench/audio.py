"""PCM and wav helpers: decode, resample (soxr), convert. No torchaudio."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile
import soxr

SPEECH_RATE_HZ = 16_000


class AudioDecodeError(ValueError):
    """The bytes or file are not audio soundfile can read."""


def read_audio(source: str | Path | bytes, *, sample_rate_hz: int = SPEECH_RATE_HZ) -> np.ndarray:
    """Mono float32 samples in [-1, 1] at `sample_rate_hz` from a file path or encoded bytes."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        data, rate = soundfile.read(handle, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        name = "audio bytes" if isinstance(source, bytes) else str(source)
        raise AudioDecodeError(f"{name} is not readable audio: {exc}") from None
    return resample(data.mean(axis=1), rate, sample_rate_hz)


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """float32 samples at `to_hz` (a copy only when the rate changes)."""
    samples = np.asarray(samples, dtype=np.float32)
    if from_hz == to_hz or samples.size == 0:
        return samples
    return np.asarray(soxr.resample(samples, from_hz, to_hz, quality="HQ"), dtype=np.float32)


def to_int16(samples: np.ndarray) -> np.ndarray:
    """float [-1, 1] to int16 PCM, clipping."""
    clipped: np.ndarray = np.clip(samples, -1.0, 1.0)
    return (clipped * 32767.0).astype(np.int16)


def to_float32(pcm: np.ndarray) -> np.ndarray:
    """int16 PCM to float32 in [-1, 1]."""
    return pcm.astype(np.float32) / 32768.0


def wav_bytes(samples: np.ndarray, sample_rate_hz: int) -> bytes:
    """Encode mono samples (float or int16) as 16-bit PCM wav."""
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sample_rate_hz, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def speech_span(
    samples: np.ndarray, sample_rate_hz: int, *, above_floor_db: float = 10.0, frame_ms: int = 20
) -> tuple[float, float]:
    """Start and end (seconds) of the audible part of a recording of float samples.

    Recordings carry room tone before and after the words, which a latency
    measured "from the end of speech" must not count. Audible = 20 ms frames
    `above_floor_db` over the noise floor (the 10th-percentile frame), and
    within 40 dB of the loudest (for clean synthetic audio). (0, 0) for silence.
    """
    samples = np.asarray(samples, dtype=np.float64).reshape(-1)
    step = max(1, sample_rate_hz * frame_ms // 1000)
    frames = samples[: samples.size - samples.size % step].reshape(-1, step)
    if frames.size == 0:
        return 0.0, 0.0
    level = 20 * np.log10(np.sqrt(np.mean(np.square(frames), axis=1)) + 1e-12)
    if level.max() <= -200:
        return 0.0, 0.0
    threshold = max(np.percentile(level, 10) + above_floor_db, level.max() - 40.0)
    audible = np.nonzero(level > threshold)[0]
    return audible[0] * step / sample_rate_hz, (audible[-1] + 1) * step / sample_rate_hz
