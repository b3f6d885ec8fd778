"""The voice pipelines a room runs: the streaming agent, the sequential baseline, and the session that wires a stack's models into them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import (
    Agent,
    AgentSession,
    ModelSettings,
    TurnHandlingOptions,
    llm,
    tts,
)
from livekit.agents.types import FlushSentinel

from agent.adapters import PhraseCache, WorkbenchSTT, WorkbenchTTS
from agent.llm_adapter import WorkbenchLLM
from agent.settings import AgentSettings
from agent.text_chunks import FirstClauseTokenizer
from agent.turn_detection import LatestFinal, TranscriptAwareTurnDetector
from workbench.audio import SPEECH_RATE_HZ, resample, to_float32
from workbench.content_filter import ContentPolicy, StreamRedactor
from workbench.models import (
    ChatMessage,
    ChatModel,
    GenerationParams,
    SpeechToText,
    TextToSpeech,
)

log = logging.getLogger("workbench.agent")


@dataclass
class WorkerModels:
    """A worker process's models, loaded once at prewarm and shared by its rooms."""

    stt: SpeechToText
    llm: ChatModel
    tts: TextToSpeech
    vad: Any  # the streaming session's: a pause of vad_silence_s asks the turn detector
    stt_vad: Any  # the STT stream's: cuts at the first short pause to transcribe early
    naive_vad: Any  # the sequential pipeline's: ends speech after naive_silence_s, no turn model
    snapshot: dict[str, Any]
    # Shared by every conversation of this process: the greeting, rendered at prewarm,
    # and notices are synthesised once, not at the start of every room.
    phrases: PhraseCache = field(default_factory=PhraseCache)


def warm_up_turn(models: WorkerModels, *, greeting: str = "") -> float:
    """One turn through the stack (TTS -> STT -> LLM), so a process is ready only if it can answer.

    A native crash or a broken model shows here, in prewarm, where the worker
    counts it, instead of in the first room. The greeting is rendered into the
    shared phrase cache, so no room waits for it. Returns the seconds it took.
    """

    async def turn() -> str:
        if greeting:
            await WorkbenchTTS(models.tts, cache=models.phrases).render(greeting)
        spoken = await models.tts.synthesize_all("Hello, can you hear me?")
        audio = resample(to_float32(spoken.pcm), spoken.sample_rate_hz, SPEECH_RATE_HZ)
        heard = await models.stt.transcribe(audio)
        question = ChatMessage(role="user", content=heard.text or "Hello")
        pieces = [
            piece
            async for piece in models.llm.stream_reply(
                [question], params=GenerationParams(max_new_tokens=4)
            )
        ]
        return "".join(pieces)

    t0 = time.perf_counter()
    # A thread of its own: prewarm may be called where an event loop already runs.
    with ThreadPoolExecutor(max_workers=1) as pool:
        reply = pool.submit(asyncio.run, turn()).result()
    if not reply.strip():
        raise RuntimeError("the warm-up turn got an empty reply from the chat model")
    return time.perf_counter() - t0


class CapturingTTS(WorkbenchTTS):
    """Keeps what it rendered since the last agent turn was recorded."""

    def __init__(self, model: TextToSpeech, *, cache: PhraseCache, voice: str | None) -> None:
        super().__init__(model, cache=cache, voice=voice)
        self.rendered: list[np.ndarray] = []

    async def render(self, text: str) -> np.ndarray:
        pcm = await super().render(text)
        self.rendered.append(pcm)
        return pcm

    def take(self) -> np.ndarray | None:
        pcm = np.concatenate(self.rendered) if self.rendered else None
        self.rendered = []
        return pcm


class WorkbenchAgent(Agent):
    """The conversational agent: content policy on what the user says and what it says back."""

    def __init__(self, *, instructions: str, policy: ContentPolicy) -> None:
        super().__init__(instructions=instructions)
        self.policy = policy

    async def on_user_turn_completed(
        self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage
    ) -> None:
        verdict = self.policy.check(new_message.text_content or "")
        new_message.extra["filter_verdict"] = verdict
        if verdict["action"] == "block":
            self.session.say(self.policy.notice)
            raise llm.StopResponse

    async def llm_node(
        self, chat_ctx: llm.ChatContext, tools: list[llm.Tool], model_settings: ModelSettings
    ) -> AsyncIterable[llm.ChatChunk | str | FlushSentinel]:
        # A blocked phrase may arrive split between two chunks: the redactor holds back
        # what could still become one (nothing, with no blocklist).
        redactor = StreamRedactor(self.policy)
        last: llm.ChatChunk | None = None
        async for chunk in Agent.default.llm_node(self, chat_ctx, tools, model_settings):
            if isinstance(chunk, llm.ChatChunk) and chunk.delta and chunk.delta.content:
                chunk.delta.content = redactor.feed(chunk.delta.content)
                last = chunk
            yield chunk
        rest = redactor.flush()
        if rest and last is not None:
            yield llm.ChatChunk(id=last.id, delta=llm.ChoiceDelta(role="assistant", content=rest))


class SequentialAgent(WorkbenchAgent):
    """The naive pipeline, to compare the streaming one against on the same models and wire.

    It answers once its VAD has heard NAIVE_SILENCE_S of silence (no turn model),
    transcribes the whole utterance then, generates the whole reply, synthesizes
    all of its audio and only then plays it. Everything else (transport,
    recording, content policy, metrics) is the streaming agent's, so the two
    differ in the pipeline alone.
    """

    async def llm_node(
        self, chat_ctx: llm.ChatContext, tools: list[llm.Tool], model_settings: ModelSettings
    ) -> AsyncIterable[llm.ChatChunk | str | FlushSentinel]:
        chunks = [c async for c in super().llm_node(chat_ctx, tools, model_settings)]
        for chunk in chunks:
            yield chunk

    async def tts_node(
        self, text: AsyncIterable[str], model_settings: ModelSettings
    ) -> AsyncIterable[rtc.AudioFrame]:
        reply = "".join([piece async for piece in text])

        async def whole() -> AsyncIterable[str]:
            yield reply

        frames = [f async for f in Agent.default.tts_node(self, whole(), model_settings)]
        for frame in frames:
            yield frame


PIPELINES: dict[str, type[WorkbenchAgent]] = {
    "streaming": WorkbenchAgent,
    "sequential": SequentialAgent,
}


def chosen_voice(model: TextToSpeech, wanted: object) -> str:
    """The user's voice setting if the stack's TTS speaks it, else its default voice."""
    voices = model.voices
    if wanted and wanted in voices:
        return str(wanted)
    if wanted:
        log.info("voice %r is not one of this stack's (%s); using %s", wanted, voices, voices[0])
    return voices[0]


def voice_session(
    models: WorkerModels,
    knobs: AgentSettings,
    *,
    sequential: bool,
    language: str | None,
    voice: str,
) -> tuple[AgentSession[Any], WorkbenchSTT, CapturingTTS]:
    """The session for one pipeline, with the adapters the recorder takes audio from."""
    latest = LatestFinal()  # the STT writes it, the turn detector reads it
    stt_adapter = WorkbenchSTT(
        models.stt,
        # the naive pipeline transcribes only once the session's VAD has ended the speech
        vad=models.naive_vad if sequential else models.stt_vad,
        language=language,
        latest=latest,
        max_utterance_s=knobs.max_utterance_s,
    )
    tts_adapter = CapturingTTS(models.tts, cache=models.phrases, voice=voice)
    session: AgentSession[Any] = AgentSession(
        stt=stt_adapter,
        llm=WorkbenchLLM(models.llm, guard_attempts=knobs.reply_attempts),
        # the first clause is spoken as soon as it is complete (agent/text_chunks.py)
        tts=tts.StreamAdapter(tts=tts_adapter, sentence_tokenizer=FirstClauseTokenizer()),
        vad=models.naive_vad if sequential else models.vad,
        turn_handling=TurnHandlingOptions(
            # the local model (no cloud inference); the naive pipeline answers when VAD says
            # the speech ended, with no extra wait
            turn_detection="vad"
            if sequential
            else TranscriptAwareTurnDetector(
                latest if knobs.finished_text else None, threshold=knobs.turn_threshold
            ),
            # piper renders a clause in ~0.05 s, so the preemptive reply is voiced too
            preemptive_generation={
                "enabled": knobs.preemptive and not sequential,
                "preemptive_tts": True,
            },
            endpointing={
                "min_delay": 0.0 if sequential else knobs.min_endpoint_s,
                "max_delay": knobs.max_endpoint_s,
            },
        ),
    )
    return session, stt_adapter, tts_adapter
