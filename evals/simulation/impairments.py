"""A simulated caller's line: speaking rate, mid-sentence pauses, phone band, room noise, level.

`render_turn` turns a caller turn's synthesised parts into what its microphone
sends: each part at the persona's rate (pitch kept, by WSOLA), the parts joined
by the persona's pauses, carried over a telephone line if it calls on one, with
its room's noise mixed at the persona's SNR (from half a second before the words
to a little after them) and its speech at the persona's level; between turns,
`room_tone` keeps the same noise on the line. The `measured_*`
functions measure the same quantities on produced audio; the tests hold the
rendering to the persona with them, and each call records them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evals.simulation.suite import Persona
from workbench.audio import resample, speech_span

NOISE_LEAD_S = 0.5  # room noise heard before the words (also what SNR is measured against)
NOISE_TAIL_S = 0.3
PHONE_BAND_HZ = (300.0, 3400.0)
NOISE_FLOOR_HZ = 100.0


@dataclass(frozen=True)
class TurnAudio:
    """A caller turn as its microphone sends it, with where its words and pauses are (seconds)."""

    samples: np.ndarray  # float32 mono
    rate_hz: int
    words: tuple[float, float]  # first word's start, last word's end
    pauses: tuple[tuple[float, float], ...]  # the silences inside the turn

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.samples.size / self.rate_hz


def render_turn(
    parts: list[np.ndarray], rate_hz: int, persona: Persona, *, seed: int = 0
) -> TurnAudio:
    """The turn the caller speaks: `parts` (float audio at `rate_hz`) through the persona's line."""
    if not parts:
        raise ValueError("a turn needs at least one part")
    lead = NOISE_LEAD_S if persona.noise else 0.0
    tail = NOISE_TAIL_S if persona.noise else 0.0
    pieces: list[np.ndarray] = [np.zeros(int(lead * rate_hz), np.float32)]
    pauses: list[tuple[float, float]] = []
    cursor = lead
    for i, part in enumerate(parts):
        if i:
            pause = np.zeros(int(persona.pause_s * rate_hz), np.float32)
            pieces.append(pause)
            pauses.append((cursor, cursor + pause.size / rate_hz))
            cursor += pause.size / rate_hz
        spoken = time_stretch(_trimmed(part, rate_hz), persona.rate, rate_hz)
        pieces.append(spoken)
        cursor += spoken.size / rate_hz
    pieces.append(np.zeros(int(tail * rate_hz), np.float32))
    speech = np.concatenate(pieces).astype(np.float64)
    if persona.telephone:
        speech = telephone_band(speech, rate_hz)
    span = (lead, cursor)
    speech *= _gain_to(speech, rate_hz, span, persona.loudness_dbfs)
    mixed = speech
    if persona.noise is not None:
        noise = coloured_noise(
            persona.noise.kind, speech.size, rate_hz, np.random.default_rng(seed)
        )
        if persona.telephone:
            noise = telephone_band(noise, rate_hz)
        speech_power = _power(speech, rate_hz, span)
        noise *= np.sqrt(speech_power / 10 ** (persona.noise.snr_db / 10) / np.mean(noise**2))
        mixed = speech + noise
    return TurnAudio(
        samples=np.clip(mixed, -1.0, 1.0).astype(np.float32),
        rate_hz=rate_hz,
        words=span,
        pauses=tuple(pauses),
    )


def room_tone(
    persona: Persona, rate_hz: int, *, seed: int = 0
) -> Callable[[int], np.ndarray] | None:
    """The persona's room noise between its turns, at the level it has under its words
    (loudness minus SNR), as a source of `n` samples at a time; None for a quiet room.

    Without it a noisy caller would fall silent between turns, which no VAD finds
    hard: the noise that must not count as speech is there all through the call.
    """
    noise = persona.noise
    if noise is None:
        return None
    rng = np.random.default_rng(seed)
    rms = 10 ** ((persona.loudness_dbfs - noise.snr_db) / 20)

    def next_samples(n: int) -> np.ndarray:
        block = coloured_noise(noise.kind, max(n, 1), rate_hz, rng)[:n]
        if persona.telephone:
            block = telephone_band(block, rate_hz)
        return np.asarray(block * rms, dtype=np.float32)

    return next_samples


def _trimmed(part: np.ndarray, rate_hz: int) -> np.ndarray:
    """A synthesised part without the silence a TTS puts around it (pauses are the persona's)."""
    start, end = speech_span(part, rate_hz)
    return np.asarray(part[int(start * rate_hz) : int(end * rate_hz)], dtype=np.float32)


def time_stretch(samples: np.ndarray, rate: float, rate_hz: int) -> np.ndarray:
    """`samples` spoken `rate` times as fast, pitch kept (WSOLA: overlap-add of 30 ms windows,
    each placed where it continues the previous one best)."""
    samples = np.asarray(samples, dtype=np.float64)
    if rate == 1.0 or samples.size == 0:
        return samples.astype(np.float32)
    window = int(0.030 * rate_hz)
    hop_out = window // 2
    hop_in = hop_out * rate
    tolerance = int(0.010 * rate_hz)
    padded = np.pad(samples, (tolerance, window + tolerance + int(hop_in) + 1))
    frames = int((samples.size / rate) // hop_out) + 1
    out = np.zeros(frames * hop_out + window)
    weight = np.zeros_like(out)
    taper = np.hanning(window)
    previous = tolerance
    for k in range(frames):
        nominal = tolerance + int(k * hop_in)
        if k == 0:
            chosen = nominal
        else:
            # Where the previous window's own continuation is most alike.
            target = padded[previous + hop_out : previous + hop_out + window]
            region = padded[nominal - tolerance : nominal + tolerance + window]
            score = np.correlate(region, target, mode="valid")
            chosen = nominal - tolerance + int(np.argmax(score))
        out[k * hop_out : k * hop_out + window] += padded[chosen : chosen + window] * taper
        weight[k * hop_out : k * hop_out + window] += taper
        previous = chosen
    stretched = out / np.maximum(weight, 1e-3)
    return stretched[: round(samples.size / rate)].astype(np.float32)


def telephone_band(samples: np.ndarray, rate_hz: int) -> np.ndarray:
    """What a narrowband phone line passes: 8 kHz sampling and 300-3400 Hz (an ideal filter)."""
    narrow = resample(np.asarray(samples, dtype=np.float32), rate_hz, 8000).astype(np.float64)
    filtered = _band_only(narrow, 8000, *PHONE_BAND_HZ)
    back = resample(filtered.astype(np.float32), 8000, rate_hz).astype(np.float64)
    return np.pad(back, (0, max(0, samples.size - back.size)))[: samples.size]


def _band_only(samples: np.ndarray, rate_hz: int, low_hz: float, high_hz: float) -> np.ndarray:
    spectrum = np.fft.rfft(samples)
    freqs = np.fft.rfftfreq(samples.size, 1 / rate_hz)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0
    return np.fft.irfft(spectrum, samples.size)


def coloured_noise(kind: str, n: int, rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise: white (flat), pink (-3 dB per octave) or brown (-6 dB per octave).

    Pink and brown have nothing below NOISE_FLOOR_HZ, as after a microphone's
    high-pass: below it their power would drift over seconds, and a level measured
    over half a second would not be the level under the words.
    """
    white = rng.standard_normal(n)
    if kind == "white":
        shaped = white
    else:
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n, 1 / rate_hz)
        exponent = {"pink": 0.5, "brown": 1.0}[kind]
        spectrum = np.where(freqs < NOISE_FLOOR_HZ, 0, spectrum / np.maximum(freqs, 1) ** exponent)
        shaped = np.fft.irfft(spectrum, n)
    return np.asarray(shaped / np.sqrt(np.mean(shaped**2)))


def _power(samples: np.ndarray, rate_hz: int, span: tuple[float, float]) -> float:
    part = samples[int(span[0] * rate_hz) : int(span[1] * rate_hz)]
    return float(np.mean(np.square(part))) if part.size else 0.0


def _gain_to(samples: np.ndarray, rate_hz: int, span: tuple[float, float], dbfs: float) -> float:
    power = _power(samples, rate_hz, span)
    return 0.0 if power <= 0 else float(10 ** (dbfs / 20) / np.sqrt(power))


def measured_level_dbfs(samples: np.ndarray, rate_hz: int, span: tuple[float, float]) -> float:
    """RMS level of `span` (the words) in dB relative to full scale."""
    return float(10 * np.log10(_power(samples, rate_hz, span) + 1e-20))


def measured_snr_db(samples: np.ndarray, rate_hz: int, span: tuple[float, float]) -> float:
    """SNR of produced audio: the noise alone from its lead-in, speech plus noise over `span`."""
    noise = _power(samples, rate_hz, (0.0, NOISE_LEAD_S))
    total = _power(samples, rate_hz, span)
    return float(10 * np.log10(max(total - noise, 1e-20) / max(noise, 1e-20)))


def measured_band_share(samples: np.ndarray, rate_hz: int, low_hz: float, high_hz: float) -> float:
    """The share of the audio's power between `low_hz` and `high_hz`."""
    power = np.abs(np.fft.rfft(np.asarray(samples, dtype=np.float64))) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / rate_hz)
    inside = (freqs >= low_hz) & (freqs <= high_hz)
    return float(power[inside].sum() / max(power.sum(), 1e-20))


def measured_rate(clean: np.ndarray, spoken: np.ndarray, rate_hz: int) -> float:
    """How much faster `spoken` says the words of `clean` (ratio of their audible lengths)."""
    c0, c1 = speech_span(clean, rate_hz)
    s0, s1 = speech_span(spoken, rate_hz)
    return (c1 - c0) / max(s1 - s0, 1e-9)
