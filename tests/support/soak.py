"""Callers that talk to the stack's agent at once for a while: is every turn recorded, and do
the worker's memory and the heard latency stay where they started?

Each caller is a researcher of its own (researchers are not held to the slots kept
for staff) in a room the web app opens; it speaks the packaged recordings one after
another, waits for the agent's answer and for it to finish, and goes on until the
time is up. Meanwhile the worker's process tree (its job processes included) is
sampled for memory. Used by `bench/soak.py` (30 minutes, the table) and by
`tests/integration/test_soak.py` (3 minutes, in CI).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from uuid import UUID

import psycopg

from tests.support.personas import create_user
from tests.support.speech import pocketsphinx_utterances
from workbench.config import Settings
from workbench.db.connection import database_url, fresh_connections
from workbench.metrics.latency import percentiles
from workbench.metrics.wer import normalise
from workbench.processes import process_tree_memory_mb
from workbench.rooms import wait_for_agent
from workbench.voice_client import join_as_web_app

MEMORY_EVERY_S = 5.0
# The longest a caller waits for an answer, and for the agent to fall silent.
QUIET_WAIT_S = 90.0
# An utterance counts as stored when this share of its words is in its room's user turns.
HEARD_SHARE = 0.5


@dataclass
class Caller:
    """One caller's conversation: its room, utterances spoken, and (when, heard latency) of answers."""

    user: UUID
    room: str = ""
    said: list[str] = field(default_factory=list)  # the transcripts of what it spoke
    answers: list[tuple[float, float]] = field(default_factory=list)

    @property
    def spoken(self) -> int:
        """Utterances spoken."""
        return len(self.said)


@dataclass
class Soak:
    """What a soak saw: the callers, and (seconds since start, MB) of the worker's memory."""

    callers: list[Caller]
    memory: list[tuple[float, int]]
    seconds: float

    def latencies(self, start_s: float, end_s: float) -> list[float]:
        """Heard latencies of answers to utterances that ended in [start_s, end_s)."""
        return [v for c in self.callers for at, v in c.answers if start_s <= at < end_s]

    def memory_mb(self, start_s: float, end_s: float) -> list[int]:
        """Memory samples taken in [start_s, end_s)."""
        return [mb for at, mb in self.memory if start_s <= at < end_s]


def new_callers(admin_dsn: str, jwt_secret: str, count: int) -> list[Caller]:
    """`count` researchers of their own, one per caller."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        people = [
            create_user(conn, name=f"soak{i}", role="researcher", jwt_secret=jwt_secret)
            for i in range(count)
        ]
    return [Caller(p.id) for p in people if p.id is not None]


async def _call(settings: Settings, caller: Caller, started: float, until: float) -> None:
    voice = await join_as_web_app(settings, caller.user)
    caller.room = voice.room.name
    try:
        # As the Conversation page does: a room whose dispatch found no free worker (or
        # that LiveKit dropped, as it can for rooms created together) is dispatched again.
        joined = time.monotonic()
        connect = fresh_connections(database_url(settings), name="soak")
        waiting = wait_for_agent(
            settings, caller.room, connect=connect, on_wait=lambda _s: None, retry_s=2.0
        )
        try:
            if not await asyncio.wait_for(waiting, timeout=90):
                return  # the room ended: spoken stays 0, which the caller of soak() sees
        except TimeoutError:
            return
        if await voice.wait_for_agent_audio(joined, timeout_s=60) is None:
            return
        utterances = pocketsphinx_utterances()
        while time.monotonic() < until:
            # Speak only once the agent has finished (its greeting, its last answer): an
            # overloaded agent answers late and long, and a caller speaking over it
            # would measure the end of the last answer as the next one's latency.
            await voice.wait_quiet(quiet_s=1.5, timeout_s=QUIET_WAIT_S)
            utterance = utterances[caller.spoken % len(utterances)]
            ended = await voice.say(str(utterance.path), then_silence_s=0.1)
            caller.said.append(utterance.reference)
            reply = await voice.wait_for_agent_audio(ended, timeout_s=QUIET_WAIT_S)
            if reply is not None:
                caller.answers.append((ended - started, reply - ended))
    finally:
        await voice.close()


async def _sample_memory(
    worker_pid: int, started: float, until: float, out: list[tuple[float, int]]
) -> None:
    while time.monotonic() < until:
        mb = await asyncio.to_thread(process_tree_memory_mb, worker_pid)
        out.append((time.monotonic() - started, mb))
        await asyncio.sleep(MEMORY_EVERY_S)


async def soak(
    settings: Settings, callers: list[Caller], *, worker_pid: int, seconds: float
) -> Soak:
    """Run `callers` against the stack's agent at once for `seconds`, sampling the worker's memory."""
    started = time.monotonic()
    until = started + seconds
    memory: list[tuple[float, int]] = []
    sampler = asyncio.create_task(_sample_memory(worker_pid, started, until, memory))
    await asyncio.gather(*(_call(settings, c, started, until) for c in callers))
    await sampler
    return Soak(callers, memory, time.monotonic() - started)


def unstored_utterances(admin_dsn: str, callers: list[Caller], *, wait_s: float = 30) -> list[str]:
    """What callers said that is not in their rooms' stored user turns ("room: words").

    Turn boundaries are the agent's to choose (two utterances heard as one turn, one
    cut in two by a barge-in), so each utterance is looked for by its words: it is
    stored when HEARD_SHARE of them are in the room's user turns (Whisper tiny's
    errors are far fewer).
    """
    texts = recorded_user_text(admin_dsn, [c.room for c in callers], wait_s=wait_s)
    missing = []
    for caller in callers:
        heard = set(_words(texts.get(caller.room, "")))
        for said in caller.said:
            words = _words(said)
            if sum(w in heard for w in words) < HEARD_SHARE * len(words):
                missing.append(f"{caller.room}: {said}")
    return missing


def _words(text: str) -> list[str]:
    """Each word normalised on its own ("five" and "5" alike; "5 5" stays two words)."""
    return [w for w in (normalise(word) for word in text.split()) if w]


def recorded_user_text(admin_dsn: str, rooms: list[str], *, wait_s: float = 30) -> dict[str, str]:
    """The user turns stored per room, joined, once the conversations have ended (or `wait_s` has passed)."""
    deadline = time.monotonic() + wait_s
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        while True:
            rows = conn.execute(
                """select c.room_name, c.status,
                          (select coalesce(string_agg(t.text, ' ' order by t.idx), '')
                           from public.turns t where t.conversation_id = c.id and t.role = 'user')
                   from public.conversations c where c.room_name = any(%s)""",
                [rooms],
            ).fetchall()
            ended = all(status != "active" for _, status, _ in rows) and len(rows) == len(rooms)
            if ended or time.monotonic() > deadline:
                return {room: str(text) for room, _, text in rows}
            time.sleep(1)


def _s(value: float | int | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table(result: Soak, *, window_s: float, warmup_s: float) -> str:
    """First and last `window_s` after `warmup_s`: heard latency p50/p95 and memory, as a table."""
    first = (warmup_s, warmup_s + window_s)
    last = (result.seconds - window_s, result.seconds + 1)
    rows = []
    for name, (a, b) in (("first", first), ("last", last)):
        heard = percentiles(result.latencies(a, b))
        mb = percentiles(result.memory_mb(a, b))
        rows.append(
            f"| {name} {window_s / 60:.0f} min ({a / 60:.1f} to {min(b, result.seconds) / 60:.1f}) "
            f"| {heard['n']} | {_s(heard['p50'])} | {_s(heard['p95'])} | {_s(mb['mean'], 0)} |"
        )
    spoken = sum(c.spoken for c in result.callers)
    answered = sum(len(c.answers) for c in result.callers)
    return "\n".join(
        [
            f"{len(result.callers)} callers for {result.seconds / 60:.1f} min: "
            f"{spoken} utterances spoken, {answered} answered",
            "",
            "| window | answers | heard p50 s | heard p95 s | worker memory MB |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
