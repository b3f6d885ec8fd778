"""livekit-agents STT / LLM / TTS classes over the workbench's one model interface.

The agent session gets its VAD-segmented speech through `WorkbenchSTT`
(non-streaming: livekit-agents' StreamAdapter buffers each utterance), tokens
through `WorkbenchLLM`, and audio through `WorkbenchTTS` (livekit-agents splits
the reply into sentences and synthesizes each as it is complete).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from typing import Any, Literal

import numpy as np
from livekit import rtc
from livekit.agents import APIConnectOptions, llm, stt, tts, utils
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

from workbench.audio import SPEECH_RATE_HZ, resample, to_float32
from workbench.models import ChatMessage, ChatModel, SpeechToText, TextToSpeech
from workbench.models.base import Model


class _Labelled:
    """`model` and `provider` labels livekit-agents puts on metrics, from the workbench spec."""

    _model: Model

    @property
    def model(self) -> str:
        return self._model.spec.name

    @property
    def provider(self) -> str:
        return f"workbench/{self._model.spec.backend}"


class WorkbenchSTT(_Labelled, stt.STT[Any]):
    """A workbench SpeechToText as a (non-streaming) livekit STT."""

    _model: SpeechToText

    def __init__(self, model: SpeechToText, *, language: str | None = None) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._model = model
        self._language = language
        self.last_utterance: tuple[np.ndarray, int] | None = (
            None  # (int16 mono PCM, rate), for recording
        )

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        frame = rtc.combine_audio_frames(buffer)
        pcm = np.frombuffer(frame.data, dtype=np.int16)
        if frame.num_channels > 1:
            pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
        self.last_utterance = (pcm.copy(), frame.sample_rate)
        audio = resample(to_float32(pcm), frame.sample_rate, SPEECH_RATE_HZ)
        lang = language if isinstance(language, str) else self._language
        transcript = await self._model.transcribe(audio, language=lang)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[
                stt.SpeechData(
                    language=LanguageCode(transcript.language or lang or "en"), text=transcript.text
                )
            ],
        )


def _to_messages(chat_ctx: llm.ChatContext) -> list[ChatMessage]:
    roles: dict[str, Literal["system", "user", "assistant"]] = {
        "system": "system",
        "developer": "system",
        "user": "user",
        "assistant": "assistant",
    }
    messages = []
    for item in chat_ctx.items:
        if not isinstance(item, llm.ChatMessage):
            continue  # tool calls and handoffs are not text the model reads
        role = roles.get(item.role)
        text = item.text_content
        if role and text:
            messages.append(ChatMessage(role=role, content=text))
    return messages


class WorkbenchLLM(_Labelled, llm.LLM[Any]):
    """A workbench ChatModel as a livekit LLM (text only, no tools)."""

    _model: ChatModel

    def __init__(self, model: ChatModel) -> None:
        super().__init__()
        self._model = model

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[Any] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[Any] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        return _WorkbenchLLMStream(self, self._model, chat_ctx=chat_ctx, conn_options=conn_options)


class _WorkbenchLLMStream(llm.LLMStream):
    def __init__(
        self,
        owner: WorkbenchLLM,
        model: ChatModel,
        *,
        chat_ctx: llm.ChatContext,
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(owner, chat_ctx=chat_ctx, tools=[], conn_options=conn_options)
        self._chat_model = model

    async def _run(self) -> None:
        request_id = utils.shortuuid("wb_")
        stream = self._chat_model.stream_reply(_to_messages(self._chat_ctx))
        try:
            async for piece in stream:
                self._event_ch.send_nowait(
                    llm.ChatChunk(
                        id=request_id, delta=llm.ChoiceDelta(role="assistant", content=piece)
                    )
                )
        finally:
            await stream.aclose()  # an interrupted reply stops the model at the next token


class PhraseCache:
    """Synthesized audio of repeated phrases, keyed by TTS spec and text (LRU)."""

    def __init__(self, *, max_entries: int = 256) -> None:
        self._entries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._max = max_entries
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(model: TextToSpeech, text: str) -> str:
        """Cache key: the spec snapshot and the normalised text."""
        spec = repr(sorted(model.spec.snapshot().items()))
        return hashlib.sha256(f"{spec}\0{' '.join(text.split())}".encode()).hexdigest()

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


class WorkbenchTTS(_Labelled, tts.TTS[Any]):
    """A workbench TextToSpeech as a livekit TTS; repeated phrases are served from `cache`."""

    _model: TextToSpeech

    def __init__(self, model: TextToSpeech, *, cache: PhraseCache | None = None) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=model.sample_rate_hz,
            num_channels=1,
        )
        self._model = model
        self.cache = cache or PhraseCache()

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _WorkbenchChunkedStream(self, text, conn_options=conn_options)

    async def render(self, text: str) -> np.ndarray:
        """PCM for `text`, through the phrase cache."""
        key = PhraseCache.key(self._model, text)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        pcm = (await self._model.synthesize_all(text)).pcm
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
