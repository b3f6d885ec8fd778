"""livekit-agents STT / LLM / TTS classes over the workbench's one model interface.

The agent session gets its transcripts from `WorkbenchSTT` (a stream that cuts
utterances with its own VAD and transcribes at the first pause, see there),
tokens through `WorkbenchLLM` (`agent.llm_adapter`), and audio through `WorkbenchTTS` (the reply cut
by `agent.text_chunks`: the first clause as soon as it is complete, then whole
sentences, each synthesized as it is ready).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import OrderedDict, deque
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectOptions, APIError, stt, tts, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr
from livekit.agents.vad import VAD, VADEventType

from agent.turn_detection import LatestFinal
from workbench.audio import SPEECH_RATE_HZ, resample, to_float32, to_int16
from workbench.models import SpeechToText, TextToSpeech
from workbench.models.base import Model

log = logging.getLogger("workbench.agent")


class SpecLabels:
    """`model` and `provider` labels livekit-agents puts on metrics, from the workbench spec."""

    _model: Model

    @property
    def model(self) -> str:
        return self._model.spec.name

    @property
    def provider(self) -> str:
        return f"workbench/{self._model.spec.backend}"


class WorkbenchSTT(SpecLabels, stt.STT[Any]):
    """A workbench SpeechToText as a streaming livekit STT that finalizes early.

    Whisper is not a streaming model, so the stream cuts utterances with its own
    VAD. It does not wait for the end-of-utterance silence the session uses: at
    the first short pause (`vad` has a short `min_silence_duration`) it already
    transcribes the whole utterance so far. If the user goes on speaking, that
    attempt is dropped and the utterance grows; if not, the final transcript is
    ready about when the session's VAD declares the speech over, instead of one
    transcription later. Every attempt covers the whole utterance from its start,
    so a mid-sentence pause costs compute, never accuracy.
    """

    _model: SpeechToText

    def __init__(
        self,
        model: SpeechToText,
        *,
        vad: VAD,
        language: str | None = None,
        prefix_s: float = 0.5,
        latest: LatestFinal | None = None,
        max_utterance_s: float = 60.0,
    ) -> None:
        """`max_utterance_s`: the most audio one utterance buffers (and each attempt
        transcribes); speech past it is not heard until the speaker pauses."""
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=False))
        self._model = model
        self._max_utterance_s = max_utterance_s
        self._vad = vad
        self._language = language
        self._prefix_s = prefix_s
        # Kept current for the turn detector (agent/turn_detection.py), when given.
        self._latest = latest
        self._heard: list[np.ndarray] = []  # user audio recognised since the last take_audio

    def take_audio(self) -> tuple[np.ndarray, int] | None:
        """The user audio behind the finals since the last call (int16 PCM at 16 kHz), for recording."""
        if not self._heard:
            return None
        pcm = np.concatenate(self._heard)
        self._heard = []
        return pcm, SPEECH_RATE_HZ

    async def transcribe_frames(
        self, frames: utils.AudioBuffer, *, language: str | None = None
    ) -> tuple[str, np.ndarray]:
        """Transcribe frames as one utterance: the text and the 16 kHz float audio it heard."""
        frame = rtc.combine_audio_frames(frames)
        pcm = np.frombuffer(frame.data, dtype=np.int16)
        if frame.num_channels > 1:
            pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
        audio = resample(to_float32(pcm), frame.sample_rate, SPEECH_RATE_HZ)
        transcript = await self._model.transcribe(audio, language=language or self._language)
        return transcript.text, audio

    def keep_audio(self, audio: np.ndarray) -> None:
        """Keep the audio behind a final transcript for `take_audio`."""
        self._heard.append(to_int16(audio))

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        lang = language if isinstance(language, str) else self._language
        try:
            text, audio = await self.transcribe_frames(buffer, language=lang)
        except Exception as exc:
            # The framework's error: `recognize` retries it and reports it as STT errors.
            raise APIError(f"transcription failed: {exc}", retryable=True) from exc
        if text:
            self.keep_audio(audio)
        return _final(text, lang, speech_end_time=None)

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        return _EarlyFinalStream(
            self,
            language=language if isinstance(language, str) else self._language,
            conn_options=conn_options,
        )


def _final(text: str, language: str | None, *, speech_end_time: float | None) -> stt.SpeechEvent:
    return stt.SpeechEvent(
        type=stt.SpeechEventType.FINAL_TRANSCRIPT,
        alternatives=[stt.SpeechData(language=LanguageCode(language or "en"), text=text)],
        speech_end_time=speech_end_time,
    )


class _EarlyFinalStream(stt.RecognizeStream):
    """Frames in; START_OF_SPEECH, FINAL_TRANSCRIPT and END_OF_SPEECH out, one final per utterance."""

    def __init__(
        self, owner: WorkbenchSTT, *, language: str | None, conn_options: APIConnectOptions
    ) -> None:
        super().__init__(stt=owner, conn_options=conn_options)
        self._owner = owner
        self._language = language
        self._recent: deque[rtc.AudioFrame] = deque()  # audio just before speech starts
        self._utterance: list[rtc.AudioFrame] | None = None  # open utterance, from its prefix
        self._utterance_s = 0.0  # its duration, held under the owner's max_utterance_s
        self._generation = 0  # bumped when speech (re)starts: older attempts are stale
        self._attempts: set[asyncio.Task[None]] = set()

    def _remember(self, frame: rtc.AudioFrame) -> None:
        self._recent.append(frame)
        while sum(f.duration for f in self._recent) > self._owner._prefix_s:
            self._recent.popleft()

    async def _run(self) -> None:
        vad_stream = self._owner._vad.stream()

        async def forward_input() -> None:
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    vad_stream.flush()
                    continue
                vad_stream.push_frame(item)
                if self._utterance is None:
                    self._remember(item)
                elif self._utterance_s < self._owner._max_utterance_s:
                    self._utterance.append(item)
                    self._utterance_s += item.duration
                elif self._utterance_s != math.inf:
                    log.warning(
                        "an utterance reached %.0f s (max_utterance_s): the rest of it is not "
                        "transcribed",
                        self._owner._max_utterance_s,
                    )
                    self._utterance_s = math.inf  # said once per utterance
            vad_stream.end_input()

        async def segment() -> None:
            async for event in vad_stream:
                if event.type == VADEventType.START_OF_SPEECH:
                    self._generation += 1
                    if self._owner._latest is not None:
                        self._owner._latest.text = None  # the user speaks on: nothing final yet
                    if self._utterance is None:
                        self._utterance = list(self._recent)
                        self._utterance_s = sum(f.duration for f in self._utterance)
                        self._recent.clear()
                        self._event_ch.send_nowait(
                            stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH)
                        )
                elif event.type == VADEventType.END_OF_SPEECH and self._utterance is not None:
                    speech_end = time.time() - event.silence_duration - event.inference_duration
                    self._attempt(speech_end)

        tasks = [asyncio.create_task(forward_input()), asyncio.create_task(segment())]
        try:
            await asyncio.gather(*tasks)
            if self._attempts:
                await asyncio.gather(*self._attempts)
            if self._utterance:  # input ended mid-utterance: its words still count
                self._attempt(time.time())
                await asyncio.gather(*self._attempts)
        finally:
            await utils.aio.cancel_and_wait(*tasks, *self._attempts)
            await vad_stream.aclose()

    def _attempt(self, speech_end: float) -> None:
        """Transcribe the utterance so far; it becomes final unless speech resumes first."""
        assert self._utterance is not None
        task = asyncio.create_task(
            self._finalize(list(self._utterance), self._generation, speech_end)
        )
        self._attempts.add(task)
        task.add_done_callback(self._attempts.discard)

    async def _finalize(
        self, frames: list[rtc.AudioFrame], generation: int, speech_end: float
    ) -> None:
        try:
            text, audio = await self._owner.transcribe_frames(frames, language=self._language)
        except Exception as exc:
            # Reported the framework's way (the STT's `error` event, which the session logs
            # and counts), and the stream goes on: the next utterance may well be heard.
            log.exception("transcription failed; the utterance is dropped")
            self._emit_error(APIError(f"transcription failed: {exc}"), recoverable=True)
            text, audio = "", np.zeros(0, dtype=np.float32)
        if generation != self._generation or self._utterance is None:
            return  # the user went on speaking: a later attempt covers this audio too
        if text:
            self._owner.keep_audio(audio)
        after = self._utterance[len(frames) :]  # silence (or a new onset) heard meanwhile
        self._utterance = None
        for frame in after:
            self._remember(frame)
        if self._owner._latest is not None:
            self._owner._latest.text = text
        if text:
            self._event_ch.send_nowait(_final(text, self._language, speech_end_time=speech_end))
        self._event_ch.send_nowait(
            stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH, speech_end_time=speech_end)
        )
        self._event_ch.send_nowait(
            stt.SpeechEvent(
                type=stt.SpeechEventType.RECOGNITION_USAGE,
                recognition_usage=stt.RecognitionUsage(
                    audio_duration=sum(f.duration for f in frames)
                ),
            )
        )


class PhraseCache:
    """Synthesized audio of repeated phrases, keyed by TTS spec and text (LRU)."""

    def __init__(self, *, max_entries: int = 256) -> None:
        self._entries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._max = max_entries
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(model: TextToSpeech, text: str, voice: str | None = None) -> str:
        """Cache key: the spec snapshot, the voice and the normalised text."""
        spec = repr(sorted(model.spec.snapshot().items()))
        voice = voice or model.voices[0]
        return hashlib.sha256(f"{spec}\0{voice}\0{' '.join(text.split())}".encode()).hexdigest()

    def get(self, key: str) -> np.ndarray | None:
        """Cached PCM, or None."""
        pcm = self._entries.get(key)
        if pcm is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return pcm

    def put(self, key: str, pcm: np.ndarray) -> None:
        """Remember PCM for a phrase."""
        self._entries[key] = pcm
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class WorkbenchTTS(SpecLabels, tts.TTS[Any]):
    """A workbench TextToSpeech as a livekit TTS in one of its voices; repeated phrases are
    served from `cache`."""

    _model: TextToSpeech

    def __init__(
        self, model: TextToSpeech, *, cache: PhraseCache | None = None, voice: str | None = None
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=model.sample_rate_hz,
            num_channels=1,
        )
        self._model = model
        self.cache = cache or PhraseCache()
        self.voice = voice  # None: the model's default

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _WorkbenchChunkedStream(self, text, conn_options=conn_options)

    async def render(self, text: str) -> np.ndarray:
        """PCM for `text`, through the phrase cache."""
        key = PhraseCache.key(self._model, text, self.voice)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        pcm = (await self._model.synthesize_all(text, voice=self.voice)).pcm
        self.cache.put(key, pcm)
        return pcm


class _WorkbenchChunkedStream(tts.ChunkedStream):
    def __init__(self, owner: WorkbenchTTS, text: str, *, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=owner, input_text=text, conn_options=conn_options)
        self._owner = owner

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=utils.shortuuid("wb_"),
            sample_rate=self._owner.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        pcm = await self._owner.render(self._input_text)
        output_emitter.push(pcm.tobytes())
        output_emitter.flush()
        await asyncio.sleep(0)
