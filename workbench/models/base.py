"""The one model interface. No LiveKit types: the agent, evals and notebooks share these objects.

Every backend implements a blocking core (`_load`, `_transcribe_batch`,
`_generate`, `_synthesize`); the public async methods time each call and run
the blocking part off the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from workbench.audio import SPEECH_RATE_HZ
from workbench.models.spec import Kind, ModelSpec, SpecError
from workbench.speech_text import split_sentences


def resolve_device(device: str) -> str:
    """`auto` is CUDA when torch sees a GPU, else CPU."""
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


class Model(ABC):
    """Common life cycle: construct (cheap), `load()` (blocking: weights + warm-up), `aclose()`."""

    kind: Kind

    def __init__(self, spec: ModelSpec) -> None:
        if spec.kind != self.kind:
            raise SpecError(f"spec {spec.name!r} is a {spec.kind} spec, not {self.kind}")
        self.spec = spec
        self.device = resolve_device(spec.device)
        self.load_s: float | None = None
        self._loaded = False

    @property
    def loaded(self) -> bool:
        """True after `load()`."""
        return self._loaded

    def load(self) -> None:
        """Load weights and warm up (run once per process, at prewarm)."""
        if self._loaded:
            return
        t0 = time.perf_counter()
        self._load()
        self._loaded = True
        self.load_s = time.perf_counter() - t0

    @abstractmethod
    def _load(self) -> None: ...

    def _require_loaded(self) -> None:
        if not self._loaded:
            raise RuntimeError(f"{self.spec.name}: call load() first")

    async def aclose(self) -> None:
        """Release what the backend holds."""
        self._loaded = False


# -- speech to text -------------------------------------------------------------


@dataclass(frozen=True)
class Transcript:
    """What a speech-to-text call returned, and how long it took."""

    text: str
    language: str | None
    audio_duration_s: float
    inference_s: float

    @property
    def rtf(self) -> float:
        """Real-time factor: inference time over audio time (lower is faster)."""
        return self.inference_s / self.audio_duration_s if self.audio_duration_s else float("inf")


class SpeechToText(Model):
    """Audio (mono float32 at 16 kHz) to text."""

    kind = "stt"

    async def transcribe(self, audio: np.ndarray, *, language: str | None = None) -> Transcript:
        """Transcribe one utterance."""
        (transcript,) = await self.transcribe_batch([audio], language=language)
        return transcript

    async def transcribe_batch(
        self, audios: Sequence[np.ndarray], *, language: str | None = None
    ) -> list[Transcript]:
        """Transcribe several utterances in one call (batched where the backend can)."""
        self._require_loaded()
        clips = [np.asarray(a, dtype=np.float32).reshape(-1) for a in audios]
        t0 = time.perf_counter()
        results = await asyncio.to_thread(self._transcribe_batch, clips, language)
        per_clip_s = (time.perf_counter() - t0) / max(1, len(clips))
        return [
            Transcript(
                text=text.strip(),
                language=lang,
                audio_duration_s=clip.size / SPEECH_RATE_HZ,
                inference_s=per_clip_s,
            )
            for clip, (text, lang) in zip(clips, results, strict=True)
        ]

    @abstractmethod
    def _transcribe_batch(
        self, clips: list[np.ndarray], language: str | None
    ) -> list[tuple[str, str | None]]:
        """Blocking: (text, language) per clip."""


# -- chat -----------------------------------------------------------------------


class ChatMessage(BaseModel):
    """One message of a chat history."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class GenerationParams(BaseModel):
    """Sampling and context settings (a spec's `params` override the defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_new_tokens: int = Field(96, ge=1, le=4096)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    repetition_penalty: float = Field(1.1, ge=1.0, le=2.0)
    context_tokens: int = Field(
        2048, ge=64, description="token budget of the prompt (system + history)"
    )
    seed: int | None = None


class ContextTooLong(ValueError):
    """The system prompt alone does not fit the context budget."""


class ChatModel(Model):
    """Chat history to a streamed reply."""

    kind = "llm"

    @property
    def default_params(self) -> GenerationParams:
        """Generation params from the spec."""
        allowed = set(GenerationParams.model_fields)
        return GenerationParams(**{k: v for k, v in self.spec.params.items() if k in allowed})

    def _warm_up(self) -> None:
        """Generate two tokens, so the first real reply does not pay one-off set-up costs."""
        self._generate(
            [ChatMessage(role="user", content="Hi")],
            GenerationParams(max_new_tokens=2),
            lambda _: None,
            lambda: False,
        )

    def fit_context(
        self, messages: Sequence[ChatMessage], *, budget_tokens: int, trim_to: float = 0.5
    ) -> list[ChatMessage]:
        """Keep the system prompt and the newest turns within `budget_tokens`; drop the oldest.

        Trimming is done in steps: when the history overflows the budget, the
        oldest turns go until it fills only `trim_to` of it, and that cut then
        stays put while the conversation grows into the budget again. The prompt's
        start is therefore the same for several turns in a row, which is what lets
        a backend reuse its key/value cache (a cut moving every turn would make
        each turn prefill the whole history). The cut is recomputed from the
        messages alone, so every call with the same history agrees.
        """
        system = [m for m in messages if m.role == "system"]
        rest = [m for m in messages if m.role != "system"]
        fixed = sum(self.count_tokens(m.content) + 4 for m in system)
        if fixed > budget_tokens:
            raise ContextTooLong(
                f"the system prompt needs {fixed} tokens; the budget is {budget_tokens}"
            )
        costs = [self.count_tokens(m.content) + 4 for m in rest]  # + role and separator tokens
        room, low_water = budget_tokens - fixed, (budget_tokens - fixed) * trim_to
        start, used = 0, 0
        # Replay the conversation's growth, cutting each time it overflows.
        for i, cost in enumerate(costs):
            used += cost
            if used > room:
                while start < i and used > low_water:
                    used -= costs[start]
                    start += 1
                if used > room:  # this message alone is over the budget
                    start, used = i + 1, 0
        kept = rest[start:]
        # A history must not start with an assistant turn the model never saw asked.
        while kept and kept[0].role == "assistant":
            kept.pop(0)
        return system + kept

    async def stream_reply(
        self, messages: Sequence[ChatMessage], *, params: GenerationParams | None = None
    ) -> AsyncGenerator[str, None]:
        """Stream the reply's text pieces as the model produces them."""
        self._require_loaded()
        params = params or self.default_params
        fitted = self.fit_context(messages, budget_tokens=params.context_tokens)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        cancelled = threading.Event()

        def emit(piece: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, piece)

        def work() -> None:
            try:
                self._generate(fitted, params, emit, cancelled.is_set)
            except BaseException as exc:  # handed to the consumer, re-raised there
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = loop.run_in_executor(None, work)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()  # an interrupted reply stops generating at the next token
            await worker

    async def reply(
        self, messages: Sequence[ChatMessage], *, params: GenerationParams | None = None
    ) -> str:
        """The whole reply at once."""
        return "".join([piece async for piece in self.stream_reply(messages, params=params)])

    async def option_probabilities(
        self, messages: Sequence[ChatMessage], options: Sequence[str]
    ) -> list[float]:
        """How likely the model is to answer with each option, normalised over the options.

        Reads the model's own next-token distribution instead of parsing
        generated text, so even a small judge gives a usable graded verdict
        (G-Eval style: expected score = sum(p_i * score_i)).
        """
        self._require_loaded()
        if not options:
            raise ValueError("no options to score")
        fitted = self.fit_context(messages, budget_tokens=self.default_params.context_tokens)
        logps = np.array(await asyncio.to_thread(self._option_logprobs, fitted, list(options)))
        weights = np.exp(logps - logps.max())
        return [float(w) for w in weights / weights.sum()]

    def _option_logprobs(self, messages: list[ChatMessage], options: list[str]) -> list[float]:
        """Blocking: log-probability of each option as the start of the assistant's reply."""
        raise NotImplementedError(f"the {self.spec.backend} backend cannot score options")

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model's tokenizer."""

    @abstractmethod
    def _generate(
        self,
        messages: list[ChatMessage],
        params: GenerationParams,
        emit: Callable[[str], None],
        should_stop: Callable[[], bool],
    ) -> None:
        """Blocking: generate, calling `emit` per text piece; stop early when `should_stop()`."""


# -- text to speech -------------------------------------------------------------


@dataclass(frozen=True)
class AudioChunk:
    """Synthesized mono int16 PCM."""

    pcm: np.ndarray
    sample_rate_hz: int

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.pcm.size / self.sample_rate_hz


def tts_voices(spec: ModelSpec | dict[str, Any]) -> list[str]:
    """The voices a TTS spec (or its snapshot) speaks, its default first.

    A backend with several voices lists them in params `voices`; any other speaks
    one, named as the spec.
    """
    data = spec.snapshot() if isinstance(spec, ModelSpec) else spec
    listed = (data.get("params") or {}).get("voices") or []
    return [str(voice) for voice in listed] or [str(data.get("name", ""))]


class UnknownVoice(ValueError):
    """A voice the TTS model does not speak."""


class TextToSpeech(Model):
    """Text to audio, streamed sentence by sentence, in one of its `voices`."""

    kind = "tts"

    @property
    @abstractmethod
    def sample_rate_hz(self) -> int:
        """Output sample rate."""

    @property
    def voices(self) -> list[str]:
        """The voices it speaks, the default first (`tts_voices`)."""
        return tts_voices(self.spec)

    async def synthesize(self, text: str, *, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        """One chunk per sentence, each as soon as it is ready; `voice` None is the default.

        Raises UnknownVoice for a voice not in `voices`.
        """
        self._require_loaded()
        speak = self._speaker(voice)
        for sentence in split_sentences(text):
            pcm = await asyncio.to_thread(speak, sentence)
            if pcm.size:
                yield AudioChunk(pcm=pcm, sample_rate_hz=self.sample_rate_hz)

    async def synthesize_all(self, text: str, *, voice: str | None = None) -> AudioChunk:
        """The whole text as one chunk."""
        pieces = [chunk.pcm async for chunk in self.synthesize(text, voice=voice)]
        pcm = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
        return AudioChunk(pcm=pcm, sample_rate_hz=self.sample_rate_hz)

    def _speaker(self, voice: str | None) -> Callable[[str], np.ndarray]:
        voices = self.voices
        if voice is None or voice == voices[0]:
            return self._synthesize
        if voice not in voices:
            raise UnknownVoice(
                f"{self.spec.name} speaks {', '.join(voices)}; it has no voice {voice!r}"
            )
        return functools.partial(self._synthesize_in, voice=voice)

    @abstractmethod
    def _synthesize(self, sentence: str) -> np.ndarray:
        """Blocking: int16 mono PCM of one sentence, in the default voice."""

    def _synthesize_in(self, sentence: str, *, voice: str) -> np.ndarray:
        """Blocking: one sentence in another of `voices` (backends that list several)."""
        raise NotImplementedError(f"{type(self).__name__} speaks one voice")


# -- text embeddings ------------------------------------------------------------


class TextEmbedder(Model):
    """Texts to unit-length vectors (cosine similarity is their dot product)."""

    kind = "embed"

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), dim) float32 array of L2-normalised embeddings."""
        self._require_loaded()
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = await asyncio.to_thread(self._embed, list(texts))
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)

    async def similarity(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """Cosine similarity of a[i] and b[i] for each i."""
        if len(a) != len(b):
            raise ValueError(f"{len(a)} texts against {len(b)}")
        vectors = await self.embed([*a, *b])
        if not len(a):
            return np.zeros(0, dtype=np.float32)
        cosines: np.ndarray = np.einsum("ij,ij->i", vectors[: len(a)], vectors[len(a) :])
        return cosines

    @abstractmethod
    def _embed(self, texts: list[str]) -> np.ndarray:
        """Blocking: one vector per text."""


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two sequences share (what a KV cache can keep)."""
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
