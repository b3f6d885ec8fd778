"""The two latency cuts of the agent: early final transcripts, and the first clause spoken early.

The STT stream runs on the real Whisper tiny.en and Silero VAD, fed in real time
like a room does, with real speech from pocketsphinx-testdata.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import stt
from livekit.plugins import silero

from agent.adapters import WorkbenchSTT
from agent.text_chunks import FirstClauseTokenizer
from tests.support.speech import pocketsphinx_utterances
from workbench.audio import read_audio, speech_span, to_int16
from workbench.metrics.wer import error_rates
from workbench.models import SpeechToText, load_model
from workbench.speech_text import first_chunk_end

pytestmark = pytest.mark.unit


def word_error_rate(reference: str, hypothesis: str) -> float:
    return error_rates([reference], [hypothesis]).wer


CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "models"
RATE_HZ = 48_000
FRAME = RATE_HZ // 100  # 10 ms, as a room delivers them


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("I'm sorry for any misunderstanding, but as an", "I'm sorry for any misunderstanding,"),
        ("Sure. I can", "Sure."),
        ("Yes! ", "Yes!"),
        ("Hi, there you", None),  # a clause of one word waits for more
        ("Hello, Mr. Smith is", None),  # an abbreviation is not a sentence end
        ("It costs 3.5 dollars", None),  # nor is a decimal point
        ("one two three four five six seven", "one two three four five six"),
        ("one two three four five si", None),  # the 6th word is not complete yet
    ],
)
def test_first_chunk_end(text: str, first: str | None) -> None:
    end = first_chunk_end(text)
    assert (text[:end] if end is not None else None) == first


async def test_stream_speaks_the_first_clause_then_sentences() -> None:
    stream = FirstClauseTokenizer().stream()
    reply = (
        "I am sorry for any confusion, but I can help with that today. What would you like to know?"
    )
    emitted: list[str] = []

    async def read() -> None:
        async for event in stream:
            emitted.append(event.token.strip())

    reader = asyncio.create_task(read())
    words = reply.split(" ")
    for i, word in enumerate(words):
        stream.push_text(word + " ")
        await asyncio.sleep(0)
        if i == 5:  # "confusion, " and the next word are in: the first chunk is out
            assert emitted == ["I am sorry for any confusion,"]
    stream.end_input()
    await reader
    assert emitted[0] == "I am sorry for any confusion,"
    assert " ".join(emitted) == reply
    assert len(emitted) >= 2


@pytest.fixture(scope="module")
def whisper() -> SpeechToText:
    model = load_model(CONFIGS / "whisper-tiny-en-ct2.yaml")
    assert isinstance(model, SpeechToText)
    return model


async def _speak(stream: stt.RecognizeStream, pcm: np.ndarray) -> None:
    """Push 48 kHz int16 audio in 10 ms frames at real time."""
    started = time.monotonic()
    for i, start in enumerate(range(0, pcm.size, FRAME)):
        chunk = pcm[start : start + FRAME]
        chunk = np.pad(chunk, (0, FRAME - chunk.size))
        stream.push_frame(rtc.AudioFrame(chunk.tobytes(), RATE_HZ, 1, FRAME))
        await asyncio.sleep(max(0.0, started + (i + 1) * 0.01 - time.monotonic()))


async def _events_for(
    model: SpeechToText, pcm: np.ndarray, **options: float
) -> tuple[list[stt.SpeechEvent], WorkbenchSTT]:
    adapter = WorkbenchSTT(
        model, vad=silero.VAD.load(min_silence_duration=0.2), language="en", **options
    )
    stream = adapter.stream()
    events: list[stt.SpeechEvent] = []

    async def read() -> None:
        async for event in stream:
            events.append(event)

    reader = asyncio.create_task(read())
    await _speak(stream, pcm)
    stream.end_input()
    await asyncio.wait_for(reader, timeout=30)
    return events, adapter


def _clip(index: int) -> tuple[np.ndarray, str]:
    """A recording cut to its words (the pauses around them are the test's to set)."""
    utterance = pocketsphinx_utterances()[index]
    audio = read_audio(utterance.path, sample_rate_hz=RATE_HZ)
    start, end = speech_span(audio, RATE_HZ)
    return to_int16(audio[int(start * RATE_HZ) : int(end * RATE_HZ)]), utterance.reference


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE_HZ), dtype=np.int16)


def _finals(events: list[stt.SpeechEvent]) -> list[str]:
    return [
        e.alternatives[0].text for e in events if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT
    ]


async def test_a_short_pause_does_not_split_the_utterance(whisper: SpeechToText) -> None:
    # two sentences with a 0.3 s pause: the attempt started at the pause is dropped when
    # speech resumes, and the one final covers both
    (a, text_a), (b, text_b) = _clip(1), _clip(2)
    events, adapter = await _events_for(
        whisper, np.concatenate([a, _silence(0.3), b, _silence(1.0)])
    )
    finals = _finals(events)
    assert len(finals) == 1, finals
    assert word_error_rate(f"{text_a} {text_b}", finals[0]) < 0.35
    kinds = [e.type for e in events if e.type != stt.SpeechEventType.RECOGNITION_USAGE]
    assert kinds == [
        stt.SpeechEventType.START_OF_SPEECH,
        stt.SpeechEventType.FINAL_TRANSCRIPT,
        stt.SpeechEventType.END_OF_SPEECH,
    ]
    heard = adapter.take_audio()
    assert heard is not None
    pcm, rate = heard
    assert pcm.size / rate >= (a.size + b.size) / RATE_HZ  # the whole utterance is kept
    # ... once: the attempt dropped at the pause leaves no audio behind (prefix + pauses < 1.5 s)
    assert pcm.size / rate < (a.size + b.size) / RATE_HZ + 1.5
    assert adapter.take_audio() is None


async def test_an_utterance_past_its_limit_is_buffered_no_further(whisper: SpeechToText) -> None:
    """Someone who speaks without pausing cannot grow the buffer (and each attempt) for ever:
    the utterance keeps its first max_utterance_s, and its final is made from that."""
    (a, _), (b, _) = _clip(1), _clip(2)
    speech = np.concatenate([a, b])
    assert speech.size / RATE_HZ > 3.0
    events, adapter = await _events_for(
        whisper, np.concatenate([speech, _silence(1.0)]), max_utterance_s=1.5
    )
    assert len(_finals(events)) == 1
    heard = adapter.take_audio()
    assert heard is not None
    pcm, rate = heard
    assert pcm.size / rate <= 1.5 + 0.01  # the first 1.5 s, prefix included


async def test_a_long_pause_makes_two_finals(whisper: SpeechToText) -> None:
    (a, text_a), (b, text_b) = _clip(1), _clip(2)
    events, _ = await _events_for(whisper, np.concatenate([a, _silence(1.5), b, _silence(1.0)]))
    finals = _finals(events)
    assert len(finals) == 2, finals
    assert word_error_rate(text_a, finals[0]) < 0.35
    assert word_error_rate(text_b, finals[1]) < 0.35


async def test_speech_cut_off_by_the_end_of_input_is_still_transcribed(
    whisper: SpeechToText,
) -> None:
    a, text_a = _clip(1)
    events, _ = await _events_for(whisper, a)  # no trailing silence at all
    assert word_error_rate(text_a, " ".join(_finals(events))) < 0.35


async def test_silence_gives_no_transcript(whisper: SpeechToText) -> None:
    events, adapter = await _events_for(whisper, _silence(1.5))
    assert _finals(events) == []
    assert adapter.take_audio() is None


def test_speech_span_skips_room_tone() -> None:
    rate = 16_000
    rng = np.random.default_rng(3)
    tone = np.sin(2 * np.pi * 220 * np.arange(rate) / rate) * 0.3
    audio = np.concatenate([np.zeros(rate // 2), tone, np.zeros(rate // 4)])
    audio = audio + rng.normal(0, 0.003, audio.size)  # a quiet room under everything
    start, end = speech_span(audio, rate)
    assert start == pytest.approx(0.5, abs=0.03)
    assert end == pytest.approx(1.5, abs=0.03)
    assert speech_span(np.zeros(rate), rate) == (0.0, 0.0)


class _Deaf(SpeechToText):
    """A speech-to-text model whose every transcription fails (a broken model file, no memory)."""

    def _load(self) -> None:
        pass

    def _transcribe_batch(
        self, clips: list[np.ndarray], language: str | None
    ) -> list[tuple[str, str | None]]:
        raise RuntimeError("the model is gone")


def _deaf() -> _Deaf:
    from workbench.models.spec import ModelSpec

    model = _Deaf(ModelSpec(name="deaf", kind="stt", backend="fake", model="x"))
    model.load()
    return model


async def test_a_failed_transcription_is_the_frameworks_error_and_the_stream_goes_on() -> None:
    audio, _ = _clip(0)
    adapter = WorkbenchSTT(_deaf(), vad=silero.VAD.load(min_silence_duration=0.2), language="en")
    errors: list[stt.STTError] = []
    adapter.on("error", errors.append)
    stream = adapter.stream()
    events: list[stt.SpeechEvent] = []

    async def read() -> None:
        async for event in stream:
            events.append(event)

    reader = asyncio.create_task(read())
    await _speak(stream, np.concatenate([_silence(0.3), audio, _silence(1.0)]))
    stream.end_input()
    await asyncio.wait_for(reader, timeout=30)
    assert not _finals(events)  # nothing heard is said to be heard
    assert [e.recoverable for e in errors] == [True]
    assert "the model is gone" in str(errors[0].error)
    # One-shot recognition raises the framework's error, which `recognize` retries.
    from livekit.agents import APIConnectOptions, APIError, utils

    frames = [rtc.AudioFrame(audio[:FRAME].tobytes(), RATE_HZ, 1, FRAME)]
    with pytest.raises(APIError):
        await adapter.recognize(
            utils.merge_frames(frames),
            conn_options=APIConnectOptions(max_retry=1, retry_interval=0),
        )
    assert [e.recoverable for e in errors[1:]] == [True, False]
