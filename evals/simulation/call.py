"""One simulated call: a room opened as the web app opens it, a caller that speaks and listens.

The agent under test runs unchanged: `open_room` records the simulation account
as the room's owner, dispatches the room to the chosen stack and hands out the
same join token a browser gets. The caller then waits for the agent (as the
Conversation page does), lets its greeting finish, and speaks each turn through
its persona's line (`impairments.render_turn`) at real time, keeping its
microphone open between turns as a browser does. It keeps the agent's audio,
times every reply as heard, barges in where the persona says, transcribes each
reply with the suite's listening STT, and, after hanging up, reads back what the
agent stored of the call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
from livekit import rtc
from psycopg import AsyncConnection

from evals.simulation.checks import CallRecord, CallTurn
from evals.simulation.impairments import (
    measured_level_dbfs,
    measured_snr_db,
    render_turn,
    room_tone,
)
from evals.simulation.suite import PAUSE_MARK, Scenario, Suite, resolve
from workbench.audio import SPEECH_RATE_HZ, resample, to_float32, to_int16
from workbench.config import Settings
from workbench.db.connection import database_url, fresh_connections, service_session
from workbench.models.base import ChatMessage, ChatModel, SpeechToText, TextEmbedder, TextToSpeech
from workbench.models.registry import load_model
from workbench.models.spec import load_spec
from workbench.rooms import open_room, wait_for_agent
from workbench.voice_client import RATE_HZ, VoiceClient

# A reply is over when the agent has been silent this long.
REPLY_QUIET_S = 1.5
# After a barge-in, a silence this long means the agent stopped its reply.
YIELD_GAP_S = 0.3
CALL_AUDIO_HZ = 16_000  # the kept recording of a call
GOODBYES = ("goodbye", "bye", "that's all", "thank you, that is all")


class CallFailed(RuntimeError):
    """The call could not be held (the agent never joined, left, or never answered): an
    errored scenario, not a failed one."""


@dataclass(frozen=True)
class CallSetup:
    """Where and how calls are placed."""

    settings: Settings
    stack: str | None = None  # None: the web app's default stack
    prompt: str | None = None  # a prompt slug; None: the agent's default prompt
    prompt_version: int | None = None  # a version of it (a draft too); None: what users get
    join_timeout_s: float = 120.0  # the agent may wait for a free worker
    reply_timeout_s: float = 30.0


@dataclass
class CallerModels:
    """The models a suite's callers use, each loaded once per run."""

    listen: SpeechToText
    embed: TextEmbedder
    judge: ChatModel | None
    voices: dict[Path, TextToSpeech] = field(default_factory=dict)
    caller_llms: dict[Path, ChatModel] = field(default_factory=dict)

    @classmethod
    def load(cls, suite: Suite) -> CallerModels:
        """Load every model `suite` names (blocking)."""

        def loaded(path: Path) -> Any:
            return load_model(load_spec(resolve(path)))

        return cls(
            listen=loaded(suite.listen_spec),
            embed=loaded(suite.embed_spec),
            judge=loaded(suite.judge_spec) if suite.judge_spec else None,
            voices={p: loaded(p) for p in {s.caller.voice_spec for s in suite.scenarios}},
            caller_llms={
                p: loaded(p)
                for p in {s.caller_llm.spec for s in suite.scenarios if s.caller_llm is not None}
            },
        )

    async def aclose(self) -> None:
        """Release every model."""
        for model in (
            self.listen,
            self.embed,
            self.judge,
            *self.voices.values(),
            *self.caller_llms.values(),
        ):
            if model is not None:
                await model.aclose()


async def place_call(
    setup: CallSetup,
    conn: AsyncConnection[Any],
    account: UUID,
    scenario: Scenario,
    models: CallerModels,
    *,
    seed: int = 0,
) -> CallRecord:
    """Hold `scenario`'s call as `account` and return it as heard; CallFailed when it could not be held.

    `conn` is a connection as the server (the web app's rights): it opens the
    room and reads back what the agent stored.
    """
    ticket = await open_room(
        setup.settings,
        conn,
        user_id=account,
        display_name="Simulated caller",
        prompt_slug=setup.prompt,
        prompt_version=setup.prompt_version,
        stack=setup.stack,
    )
    assert setup.settings.livekit_url is not None, "open_room checked LiveKit's settings"
    voice = VoiceClient(setup.settings.livekit_url, ticket.token, keep_audio=True)
    voice.room_tone = room_tone(scenario.caller, RATE_HZ, seed=seed)
    record = CallRecord(scenario=scenario.id, room=ticket.room)
    t0 = time.monotonic()
    try:
        await voice.connect()
        await _hold(setup, voice, scenario, models, record, t0=t0, seed=seed)
    finally:
        await voice.close()
        record.audio = call_audio(voice, t0)
    record.conversation_id, record.stored_caller_text = await stored_call(conn, ticket.room)
    return record


async def _hold(
    setup: CallSetup,
    voice: VoiceClient,
    scenario: Scenario,
    models: CallerModels,
    record: CallRecord,
    *,
    t0: float,
    seed: int,
) -> None:
    connect = fresh_connections(database_url(setup.settings), name="simulated-caller")
    waiting = wait_for_agent(
        setup.settings, record.room, connect=connect, on_wait=lambda _s: None, retry_s=2.0
    )
    try:
        joined = await asyncio.wait_for(waiting, timeout=setup.join_timeout_s)
    except TimeoutError:
        joined = False
    if not joined:
        raise CallFailed(f"no agent joined room {record.room} in {setup.join_timeout_s:.0f} s")
    # Its greeting, if it says one, before the caller's first words.
    if await voice.wait_for_agent_audio(t0, timeout_s=8.0) is not None:
        await voice.wait_quiet(quiet_s=REPLY_QUIET_S, timeout_s=setup.reply_timeout_s)
    persona = scenario.caller
    line = scenario.caller_llm.opening if scenario.caller_llm else scenario.turns[0].say
    number = 1
    while True:
        barging = persona.barge_in is not None and persona.barge_in.after_turn == number - 1
        turn = await _speak(voice, line, scenario, models, t0, seed=seed + number, barging=barging)
        record.turns.append(turn)
        await _listen(setup, voice, turn, t0, barge_next=_barges_after(scenario, number))
        turn.reply_text = await _transcribe(voice, models.listen, turn, t0)
        if number >= scenario.max_turns:
            record.ended_by = "turn limit" if scenario.caller_llm else "caller"
            return
        if not _agent_present(voice):
            if _said_goodbye(line):
                record.ended_by = "agent"
                return
            raise CallFailed(f"the agent left room {record.room} after caller turn {number}")
        if scenario.caller_llm is not None:
            if _said_goodbye(line):
                return
            line = await _caller_line(models, scenario, record)
        else:
            line = scenario.turns[number].say
        number += 1


def call_audio(voice: VoiceClient, t0: float) -> np.ndarray:
    """The call as the caller heard it, from `t0`: (samples, 2) float32 at CALL_AUDIO_HZ,
    the caller's microphone left and the agent right, each where it happened in time."""
    pieces = [(at, pcm, 0) for at, pcm in voice.sent]
    frame_s = len(voice.heard.agent_frames[0]) / RATE_HZ if voice.heard.agent_frames else 0.0
    pieces += [
        (at - frame_s, frame, 1)  # a frame's arrival is its end
        for (at, _), frame in zip(voice.heard.agent_audio, voice.heard.agent_frames, strict=False)
    ]
    if not pieces:
        return np.zeros((0, 2), np.float32)
    end = max(at - t0 + pcm.size / RATE_HZ for at, pcm, _ in pieces)
    timeline = np.zeros((2, int(end * RATE_HZ) + 1), np.float32)
    for at, pcm, channel in pieces:
        start = max(0, int((at - t0) * RATE_HZ))
        part = to_float32(pcm)[: timeline.shape[1] - start]
        timeline[channel, start : start + part.size] += part
    # Placed at the rate it was sent and heard at, resampled once (not frame by frame).
    return np.stack([resample(channel, RATE_HZ, CALL_AUDIO_HZ) for channel in timeline], axis=1)


def _barges_after(scenario: Scenario, number: int) -> float | None:
    barge = scenario.caller.barge_in
    return barge.after_s if barge is not None and barge.after_turn == number else None


async def _speak(
    voice: VoiceClient,
    line: str,
    scenario: Scenario,
    models: CallerModels,
    t0: float,
    *,
    seed: int,
    barging: bool,
) -> CallTurn:
    persona = scenario.caller
    tts = models.voices[persona.voice_spec]
    parts = []
    for text in (p.strip() for p in line.split(PAUSE_MARK)):
        chunk = await tts.synthesize_all(text, voice=persona.voice)
        parts.append(to_float32(chunk.pcm) if chunk.pcm.dtype == np.int16 else chunk.pcm)
    audio = render_turn(parts, tts.sample_rate_hz, persona, seed=seed)
    if not barging:
        await voice.silence(persona.answer_delay_s)
    started = await voice.send(to_int16(resample(audio.samples, audio.rate_hz, RATE_HZ)))
    measured = {"level_dbfs": measured_level_dbfs(audio.samples, audio.rate_hz, audio.words)}
    if persona.noise is not None:
        measured["snr_db"] = measured_snr_db(audio.samples, audio.rate_hz, audio.words)
    return CallTurn(
        said=" ".join(p.strip() for p in line.split(PAUSE_MARK)),
        started_s=started - t0,
        words_end_s=started - t0 + audio.words[1],
        pauses=[(started - t0 + a, started - t0 + b) for a, b in audio.pauses],
        barged_in=barging,
        line=measured,
    )


async def _listen(
    setup: CallSetup, voice: VoiceClient, turn: CallTurn, t0: float, *, barge_next: float | None
) -> None:
    """Wait for the reply (and, unless the caller barges in, for its end); time it as heard."""
    heard = voice.heard
    words_end = t0 + turn.words_end_s
    # Let the turn's own audio finish leaving before timing anything after it.
    while time.monotonic() < words_end:
        await asyncio.sleep(0.05)
    reply_at = await voice.wait_for_agent_audio(words_end, timeout_s=setup.reply_timeout_s)
    turn.agent_over_turn_s = heard.audible_between(t0 + turn.started_s, words_end)
    if not turn.barged_in:
        turn.agent_over_pauses_s = sum(
            heard.audible_between(t0 + a, t0 + b) for a, b in turn.pauses
        )
    else:
        turn.agent_yield_s = _yield_time(voice, t0 + turn.started_s)
    if reply_at is None:
        return
    turn.reply_at_s = reply_at - t0
    if barge_next is not None:
        await voice.silence(max(0.0, reply_at + barge_next - time.monotonic()))
    else:
        await voice.wait_quiet(quiet_s=REPLY_QUIET_S, timeout_s=setup.reply_timeout_s * 2)
    last = heard.last_audible()
    turn.reply_end_s = None if last is None else last - t0


def _yield_time(voice: VoiceClient, barge_at: float) -> float | None:
    """How long the agent kept talking after the caller began over it."""
    audible = [at for at, peak in voice.heard.agent_audio if at >= barge_at and peak > 300]
    if not audible:
        return 0.0
    end = audible[0]
    for at in audible[1:]:
        if at - end > YIELD_GAP_S:
            break
        end = at
    return end - barge_at


async def _transcribe(voice: VoiceClient, listen: SpeechToText, turn: CallTurn, t0: float) -> str:
    """The reply as the caller heard it: everything the agent said from the turn's start on
    (talk over the caller included), or after a barge-in, from the reply's own start (the
    interrupted reply's tail is not this reply)."""
    end = t0 + (turn.reply_end_s if turn.reply_end_s is not None else turn.words_end_s) + 0.2
    start = turn.started_s
    if turn.barged_in:
        start = turn.reply_at_s if turn.reply_at_s is not None else turn.words_end_s
    pcm = voice.heard.agent_pcm_between(t0 + start - 0.05, end)
    if pcm.size < RATE_HZ // 10:
        return ""
    audio = resample(to_float32(pcm), RATE_HZ, SPEECH_RATE_HZ)
    return (await listen.transcribe(audio, language="en")).text.strip()


def _agent_present(voice: VoiceClient) -> bool:
    return any(
        p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        for p in voice.room.remote_participants.values()
    )


def _said_goodbye(line: str) -> bool:
    return any(word in line.lower() for word in GOODBYES)


CALLER_INSTRUCTIONS = (
    "You are a person calling a voice assistant on the phone. Your goal: {goal} "
    "Your manner: {style} Say only your next line, in one or two short spoken sentences, "
    "without quotes or stage directions. When your goal is met, say goodbye."
)


async def _caller_line(models: CallerModels, scenario: Scenario, record: CallRecord) -> str:
    """The caller LLM's next line toward the persona's goal (the agent's words are its "user")."""
    assert scenario.caller_llm is not None
    llm = models.caller_llms[scenario.caller_llm.spec]
    persona = scenario.caller
    messages = [
        ChatMessage(
            role="system",
            content=CALLER_INSTRUCTIONS.format(goal=persona.goal, style=persona.style or "plain."),
        )
    ]
    for turn in record.turns:
        messages.append(ChatMessage(role="assistant", content=turn.said))
        messages.append(ChatMessage(role="user", content=turn.reply_text or "(silence)"))
    line = (await llm.reply(messages)).strip().replace(PAUSE_MARK, " ")
    return line[:600] or "Sorry, could you say that again?"


async def stored_call(
    conn: AsyncConnection[Any], room: str, *, wait_s: float = 20.0
) -> tuple[str | None, str]:
    """The conversation the agent stored for `room` and the caller's words as it heard them.

    Waits (up to `wait_s`) for the agent to end the conversation, so its last turn is in.
    """
    deadline = time.monotonic() + wait_s
    while True:
        async with service_session(conn):
            cur = await conn.execute(
                """select c.id::text, c.status,
                          (select coalesce(string_agg(t.text, ' ' order by t.idx), '')
                           from public.turns t where t.conversation_id = c.id and t.role = 'user')
                   from public.conversations c where c.room_name = %s""",
                [room],
            )
            row = await cur.fetchone()
        if row is not None and (row[1] != "active" or time.monotonic() > deadline):
            return row[0], str(row[2])
        if row is None and time.monotonic() > deadline:
            return None, ""
        await asyncio.sleep(0.5)
