"""A caller's side of a voice conversation: publish speech, hear the agent, time it.

Used by the simulated callers (`evals.simulation`), the end-to-end tests and the
latency benchmark: joins a room as a workbench user (identity = user id),
publishes audio as its microphone at real time, and records when agent audio
arrives (and the audio itself, to transcribe what the caller heard).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

import numpy as np
import psycopg
from livekit import api, rtc

from workbench.audio import read_audio, resample, speech_span, to_int16
from workbench.config import Settings
from workbench.db.connection import database_url
from workbench.rooms import open_room

RATE_HZ = 48_000
FRAME_MS = 20


@dataclass
class Heard:
    """What the client observed, on its own clock (time.monotonic)."""

    speech_ended_at: list[float] = field(default_factory=list)
    agent_audio: list[tuple[float, float]] = field(
        default_factory=list
    )  # (arrival time, frame peak)
    agent_frames: list[np.ndarray] = field(default_factory=list)  # int16, with keep_audio

    def audible_between(self, start: float, end: float, *, threshold: int = 300) -> float:
        """Seconds of audible agent audio that arrived between `start` and `end`."""
        return sum(
            FRAME_MS / 1000
            for at, peak in self.agent_audio
            if start <= at < end and peak > threshold
        )

    def last_audible(self, *, threshold: int = 300) -> float | None:
        """When the latest audible agent frame arrived."""
        return next((at for at, peak in reversed(self.agent_audio) if peak > threshold), None)

    def agent_pcm_between(self, start: float, end: float) -> np.ndarray:
        """The agent's audio (int16, RATE_HZ) that arrived between `start` and `end` (keep_audio)."""
        frames = [
            frame
            for (at, _), frame in zip(self.agent_audio, self.agent_frames, strict=False)
            if start <= at < end
        ]
        return np.concatenate(frames) if frames else np.zeros(0, np.int16)

    def first_agent_audio_after(self, t: float, *, threshold: int = 300) -> float | None:
        """When the first audible agent frame arrived after `t`."""
        return next((at for at, peak in self.agent_audio if at > t and peak > threshold), None)

    def audible_seconds(self, *, threshold: int = 300) -> float:
        """How much audible agent audio arrived."""
        return sum(FRAME_MS / 1000 for _, peak in self.agent_audio if peak > threshold)


def token(key: str, secret: str, identity: str, room: str) -> str:
    """A join token for `identity` in `room`."""
    grants = api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True)
    return api.AccessToken(key, secret).with_identity(identity).with_grants(grants).to_jwt()


class VoiceClient:
    """One participant with a microphone track fed from files."""

    def __init__(self, url: str, join_token: str, *, keep_audio: bool = False) -> None:
        """A client that joins with `join_token` (the web app's ticket, or one `minted`);
        with `keep_audio` it keeps the agent's audio, not only when it arrived."""
        self.url, self._token = url, join_token
        self._keep_audio = keep_audio
        self.sent: list[tuple[float, np.ndarray]] = []  # (when it began, int16 PCM), keep_audio
        # The caller's room between its words (a simulated caller's background noise).
        self.room_tone: Callable[[int], np.ndarray] | None = None
        self.room = rtc.Room()
        self.heard = Heard()
        self._source = rtc.AudioSource(RATE_HZ, 1)
        self._listen_task: asyncio.Task[None] | None = None

    @classmethod
    def minted(cls, url: str, key: str, secret: str, *, room: str, identity: str) -> VoiceClient:
        """A client with a token minted from the key pair (no room key: the agent records
        such a participant in no room the web app opened)."""
        return cls(url, token(key, secret, identity, room))

    async def connect(self) -> None:
        """Join, publish the microphone, start listening to the agent."""

        @self.room.on("track_subscribed")
        def _on_track(track: rtc.Track, *_: object) -> None:
            if track.kind == rtc.TrackKind.KIND_AUDIO and self._listen_task is None:
                self._listen_task = asyncio.create_task(self._listen(track))

        await self.room.connect(self.url, self._token)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", self._source)
        await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )

    async def _listen(self, track: rtc.Track) -> None:
        async for event in rtc.AudioStream(
            track, sample_rate=RATE_HZ, num_channels=1, frame_size_ms=FRAME_MS
        ):
            data = np.frombuffer(event.frame.data, dtype=np.int16)
            self.heard.agent_audio.append(
                (time.monotonic(), int(np.abs(data).max()) if data.size else 0)
            )
            if self._keep_audio:
                self.heard.agent_frames.append(data.copy())

    async def _push(self, pcm: np.ndarray) -> None:
        step = RATE_HZ * FRAME_MS // 1000
        for start in range(0, pcm.size, step):
            chunk = pcm[start : start + step]
            if chunk.size < step:
                chunk = np.pad(chunk, (0, step - chunk.size))
            await self._source.capture_frame(rtc.AudioFrame(chunk.tobytes(), RATE_HZ, 1, step))

    async def say(self, wav: str, *, then_silence_s: float = 0.0) -> float:
        """Speak a wav at real time (followed by silence); returns when its words ended.

        That is when the last audible sample leaves this client: `capture_frame`
        returns once a frame is queued (the source buffers up to a second) and a
        recording's room tone after the words is not speech.
        """
        audio = read_audio(wav, sample_rate_hz=RATE_HZ)
        _, words_end = speech_span(audio, RATE_HZ)
        await self._push(to_int16(audio))
        tail = audio.size / RATE_HZ - words_end
        ended = time.monotonic() + self._source.queued_duration - tail
        self.heard.speech_ended_at.append(ended)
        if then_silence_s:
            await self.silence(then_silence_s)
        return ended

    async def send(self, pcm: np.ndarray) -> float:
        """Speak int16 PCM at 48 kHz; returns when its first sample leaves this client
        (after what the source had queued before it)."""
        starts = time.monotonic() + self._source.queued_duration
        if self._keep_audio:
            self.sent.append((starts, pcm))
        await self._push(pcm)
        return starts

    async def silence(self, seconds: float) -> None:
        """Send what the microphone hears while the caller says nothing: `room_tone`
        (float samples at RATE_HZ for a length asked) if set, else silence."""
        n = int(seconds * RATE_HZ)
        tone = self.room_tone(n) if self.room_tone is not None else None
        await self._push(to_int16(tone) if tone is not None else np.zeros(n, dtype=np.int16))

    async def say_pcm(self, samples: np.ndarray, rate_hz: int) -> None:
        """Speak raw float samples."""
        await self._push(to_int16(resample(samples, rate_hz, RATE_HZ)))

    async def wait_for_agent_audio(self, after: float, *, timeout_s: float) -> float | None:
        """Wait for audible agent audio after `after`; its arrival time or None."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            arrived = self.heard.first_agent_audio_after(after)
            if arrived is not None:
                return arrived
            await self.silence(0.1)  # keep the microphone streaming while waiting
        return None

    async def wait_quiet(self, *, quiet_s: float, timeout_s: float) -> None:
        """Keep the microphone silent until the agent has said nothing for `quiet_s` (or `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            recent = [at for at, peak in self.heard.agent_audio if peak > 300]
            if recent and time.monotonic() - recent[-1] > quiet_s:
                return
            await self.silence(0.2)

    async def close(self) -> None:
        """Leave the room."""
        if self._listen_task is not None:
            self._listen_task.cancel()
        await self.room.disconnect()


async def join_as_web_app(
    settings: Settings,
    user_id: UUID,
    *,
    pipeline: str | None = None,
    stack: str | None = None,
) -> VoiceClient:
    """A room opened for `user_id` as the web app opens it (on `stack`, asking for
    `pipeline`), and a client in it as that user, connected."""
    assert settings.livekit_url
    assert settings.livekit_api_key
    assert settings.livekit_api_secret
    async with await psycopg.AsyncConnection.connect(
        database_url(settings), autocommit=True
    ) as conn:
        ticket = await open_room(
            settings, conn, user_id=user_id, display_name="test", pipeline=pipeline, stack=stack
        )
    voice = VoiceClient(settings.livekit_url, ticket.token)
    await voice.connect()
    return voice
