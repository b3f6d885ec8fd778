"""`latency`: each clip through the full STT -> LLM -> TTS stack, streamed as the live agent streams.

The clock starts when the user's utterance has ended (all its audio is in
hand, as after end-of-turn detection live) and stops at the first synthesized
audio of the reply. LLM tokens flow to TTS sentence by sentence while
generation continues, so the stages compete for the CPU as they do live.
End-of-utterance detection and network time are not part of it: those are
measured live by the agent (`turns.eou_delay_s`, `v2v_audio_s`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from evals.tasks.base import Task
from workbench.audio import AudioDecodeError
from workbench.db.models import EvalSample
from workbench.latency_stages import (
    LLM_FIRST_TOKEN,
    SPEECH_TO_TEXT,
    TTS_FIRST_AUDIO,
    VOICE_TO_VOICE,
)
from workbench.metrics.latency import percentiles
from workbench.models import ChatMessage
from workbench.models.stack import StackSpec, create_stack_models
from workbench.prompts import FALLBACK_SYSTEM_PROMPT
from workbench.speech_text import take_chunks
from workbench_datasets.manifest import Manifest, ManifestRow

# The live stages this offline replay measures, and two of its own: the first sentence
# complete (what the agent starts speaking from) and the whole reply.
FIRST_SENTENCE, WHOLE_REPLY = "llm_first_sentence_s", "reply_s"
STT, TTFT, TTFB, V2V = (
    s.field for s in (SPEECH_TO_TEXT, LLM_FIRST_TOKEN, TTS_FIRST_AUDIO, VOICE_TO_VOICE)
)
STAGES = (STT, TTFT, FIRST_SENTENCE, TTFB, V2V, WHOLE_REPLY)


class LatencyTask(Task[ManifestRow]):
    """Per-stage and voice-to-voice latency of a stack on recorded utterances."""

    name = "latency"
    # 2: replies cut as the live agent cuts them (first clause early) and its fallback prompt.
    version = "2"

    def __init__(
        self, *, stack: StackSpec, manifest: Manifest, system_prompt: str = FALLBACK_SYSTEM_PROMPT
    ) -> None:
        super().__init__(
            dataset_id=manifest.dataset_id, items=[r for r in manifest.rows if r.speech]
        )
        self.manifest = manifest
        self.stack = stack
        self.system_prompt = system_prompt
        self.stt, self.llm, self.tts = create_stack_models(stack)

    def item_id(self, item: ManifestRow) -> str:
        return item.id

    def spec_snapshot(self) -> dict[str, Any]:
        return {"stack": self.stack.snapshot(), "system_prompt": self.system_prompt}

    def load(self) -> None:
        for model in (self.stt, self.llm, self.tts):
            model.load()

    async def score(self, batch: Sequence[ManifestRow]) -> list[EvalSample]:
        # One clip at a time: concurrent clips would measure contention, not latency.
        out = []
        for row in batch:
            try:
                audio = self.manifest.load_audio(row)
            except (AudioDecodeError, OSError) as exc:
                out.append(EvalSample(sample_id=row.id, reference=row.reference, error=str(exc)))
                continue
            out.append(await self._one_turn(row, audio))
        return out

    async def _one_turn(self, row: ManifestRow, audio: Any) -> EvalSample:
        t0 = time.perf_counter()
        transcript = (await self.stt.transcribe(audio)).text
        t_stt = time.perf_counter()
        if not transcript:
            return EvalSample(
                sample_id=row.id, reference=row.reference, error="nothing transcribed"
            )
        messages = [
            ChatMessage(role="system", content=self.system_prompt),
            ChatMessage(role="user", content=transcript),
        ]
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        marks: dict[str, float] = {}
        reply: list[str] = []

        async def generate() -> None:
            # Cut as the live agent cuts: the first clause early, then sentences.
            pending = ""
            async for piece in self.llm.stream_reply(messages):
                marks.setdefault("ttft", time.perf_counter())
                reply.append(piece)
                pending += piece
                complete, pending = take_chunks(pending, first="first_sentence" not in marks)
                for sentence in complete:
                    marks.setdefault("first_sentence", time.perf_counter())
                    await sentences.put(sentence)
            if pending.strip():
                marks.setdefault("first_sentence", time.perf_counter())
                await sentences.put(pending)
            await sentences.put(None)

        async def speak() -> None:
            while (sentence := await sentences.get()) is not None:
                async for _chunk in self.tts.synthesize(sentence):
                    marks.setdefault("audio", time.perf_counter())

        await asyncio.gather(generate(), speak())
        t_end = time.perf_counter()
        metrics: dict[str, Any] = {
            "duration_s": row.duration_s,
            "transcript": transcript,
            STT: t_stt - t0,
            WHOLE_REPLY: t_end - t_stt,
        }
        if "ttft" in marks:
            metrics[TTFT] = marks["ttft"] - t_stt
        if "first_sentence" in marks:
            metrics[FIRST_SENTENCE] = marks["first_sentence"] - t_stt
        if "audio" in marks:
            metrics[TTFB] = marks["audio"] - marks["first_sentence"]
            metrics[V2V] = marks["audio"] - t0
        return EvalSample(
            sample_id=row.id, reference=row.reference, hypothesis="".join(reply), metrics=metrics
        )

    def summarise(self, samples: Sequence[EvalSample]) -> dict[str, Any]:
        ok = [s for s in samples if s.error is None]
        out: dict[str, Any] = {"samples": len(samples), "errors": len(samples) - len(ok)}
        for stage in STAGES:
            out[stage] = percentiles(s.metrics.get(stage) for s in ok)
        return out

    async def aclose(self) -> None:
        for model in (self.stt, self.llm, self.tts):
            await model.aclose()
