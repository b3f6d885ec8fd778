"""The turn-taking lab's replay: the AgentSession's endpointing rules on a recording, in clip time.

`TurnTakingReplay` runs a clip through the agent's own VAD (Silero, through
livekit-plugins-silero) and end-of-turn model (`turn-detector-v1-mini` through
livekit's local inference) and applies the session's rules
(`workbench.turn_taking`), so a grid of settings can be compared on the same
audio: how long after the end of speech the agent would take its turn, and how
often it would take it while the user still had words to say.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.audio import SPEECH_RATE_HZ, speech_span, to_int16
from workbench.turn_taking import EndpointSetting, TurnEnd, reads_finished

# livekit-agents' own constants (livekit/agents/inference/eot/): the turn model is
# asked 0.2 s into a pause and sees the turn's last 1.2 s.
PREDICT_AFTER_SILENCE_S = 0.2
MODEL_WINDOW_S = 1.2
# Silence appended to every clip, longer than any wait, so every turn can end.
TAIL_S = 4.0


@dataclass(frozen=True)
class _VadEvent:
    # "start" and "end" of speech; "pause": 0.2 s into a pause while speaking (the turn
    # model is asked); "resume": speech again before that pause ended (the answer is void)
    kind: str
    at_s: float
    speech_end_s: float = 0.0  # for "end": where the speech stopped


@dataclass(frozen=True)
class EarlyTranscript:
    """What the early STT gives for the audio up to a pause."""

    seconds: float  # how long it took
    text: str


Transcriber = Callable[[np.ndarray], Awaitable[EarlyTranscript]]


class TurnTakingReplay:
    """Replays clips through the agent's VAD and turn model; caches what settings share.

    `transcribe` (optional) runs the STT on a piece of audio: with it, a commit
    also waits for the early transcript, as live, and settings with a
    `text_done_delay_s` can read it.
    """

    def __init__(
        self, *, early_silence_s: float = 0.15, transcribe: Transcriber | None = None
    ) -> None:
        from livekit.local_inference import EOT

        self._eot = EOT()
        self._early_silence_s = early_silence_s
        self._transcribe = transcribe
        self._vads: dict[float, Any] = {}
        self._events: dict[tuple[int, float], list[_VadEvent]] = {}
        self._scores: dict[tuple[int, int], float] = {}
        self._transcripts: dict[tuple[int, int], EarlyTranscript] = {}

    async def replay(self, clip_id: int, samples: np.ndarray, setting: EndpointSetting) -> TurnEnd:
        """The first commit in `samples` (float, 16 kHz) under `setting`.

        `clip_id` keys the caches: replaying one clip under many settings runs its VAD
        once per silence length, asks the turn model once per pause and transcribes
        once per pause.
        """
        if setting.text_done_delay_s is not None and self._transcribe is None:
            raise ValueError(f"{setting.label} reads the transcript: give the replay an STT")
        audio = np.concatenate([samples, np.zeros(int(TAIL_S * SPEECH_RATE_HZ), np.float32)])
        speech_end = float(speech_span(samples, SPEECH_RATE_HZ)[1])
        pending: tuple[float, float | None] | None = None  # (commit time, probability)
        probability: float | None = None
        for event in await self._vad_events(clip_id, audio, setting.vad_silence_s):
            if pending is not None and event.at_s >= pending[0]:
                break  # nothing cancelled the commit in time: the turn is taken
            if event.kind in ("start", "resume"):
                pending, probability = None, None
            elif event.kind == "pause":
                probability = await self._score(clip_id, audio, event.at_s)
            elif event.kind == "end":
                delay = setting.min_delay_s
                threshold = setting.unlikely_threshold
                used = probability if threshold is not None else None
                if used is not None and threshold is not None and used < threshold:
                    delay = setting.max_delay_s
                    if setting.text_done_delay_s is not None:
                        early = await self._early_transcript(clip_id, audio, event)
                        if reads_finished(early.text):
                            delay = min(delay, setting.text_done_delay_s)
                commit = max(event.speech_end_s + delay, event.at_s)
                if self._transcribe is not None:
                    early = await self._early_transcript(clip_id, audio, event)
                    ready = event.speech_end_s + self._early_silence_s + early.seconds
                    commit = max(commit, ready)
                pending = (commit, used)
        if pending is None:
            raise RuntimeError(f"clip {clip_id}: no end of speech within {TAIL_S:g} s of silence")
        return TurnEnd(speech_end_s=speech_end, committed_s=pending[0], eot_probability=pending[1])

    def forget(self, clip_id: int) -> None:
        """Drop what was cached for a clip once every setting has replayed it."""
        caches: tuple[dict[Any, Any], ...] = (self._events, self._scores, self._transcripts)
        for cache in caches:
            for key in [k for k in cache if k[0] == clip_id]:
                del cache[key]

    async def _vad_events(
        self, clip_id: int, audio: np.ndarray, silence_s: float
    ) -> list[_VadEvent]:
        key = (clip_id, silence_s)
        if key not in self._events:
            self._events[key] = await self._run_vad(audio, silence_s)
        return self._events[key]

    async def _run_vad(self, audio: np.ndarray, silence_s: float) -> list[_VadEvent]:
        from livekit import rtc
        from livekit.agents.vad import VADEventType
        from livekit.plugins import silero

        if silence_s not in self._vads:
            self._vads[silence_s] = silero.VAD.load(min_silence_duration=silence_s)
        stream = self._vads[silence_s].stream()
        pcm = to_int16(audio)
        step = SPEECH_RATE_HZ // 100  # 10 ms frames, as WebRTC delivers them
        for start in range(0, pcm.size - step + 1, step):
            stream.push_frame(
                rtc.AudioFrame(pcm[start : start + step].tobytes(), SPEECH_RATE_HZ, 1, step)
            )
        stream.end_input()
        events: list[_VadEvent] = []
        speaking, asked = False, False
        async for ev in stream:
            at = ev.samples_index / SPEECH_RATE_HZ
            if ev.type == VADEventType.START_OF_SPEECH:
                speaking, asked = True, False
                events.append(_VadEvent("start", at))
            elif ev.type == VADEventType.END_OF_SPEECH:
                speaking, asked = False, False
                events.append(_VadEvent("end", at, speech_end_s=at - ev.silence_duration))
            elif ev.raw_accumulated_speech > 0:
                if asked:  # speech inside the pause: the live session voids the answer
                    events.append(_VadEvent("resume", at))
                asked = False
            elif speaking and not asked and ev.raw_accumulated_silence >= PREDICT_AFTER_SILENCE_S:
                asked = True
                events.append(_VadEvent("pause", at))
        await stream.aclose()
        return events

    async def _score(self, clip_id: int, audio: np.ndarray, at_s: float) -> float:
        end = int(at_s * SPEECH_RATE_HZ)
        key = (clip_id, end)
        if key not in self._scores:
            window = to_int16(audio[max(0, end - int(MODEL_WINDOW_S * SPEECH_RATE_HZ)) : end])
            self._scores[key] = float(await asyncio.to_thread(self._eot.predict, window))
        return self._scores[key]

    async def _early_transcript(
        self, clip_id: int, audio: np.ndarray, end: _VadEvent
    ) -> EarlyTranscript:
        """The STT's transcript of the audio up to this end of speech (once per pause)."""
        assert self._transcribe is not None
        stop = int(end.speech_end_s * SPEECH_RATE_HZ)
        key = (clip_id, stop)
        if key not in self._transcripts:
            self._transcripts[key] = await self._transcribe(audio[:stop])
        return self._transcripts[key]
