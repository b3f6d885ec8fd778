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
from tests.support.voice_client import join_as_web_app
from workbench.config import Settings
from workbench.metrics.latency import percentiles
from workbench.processes import process_tree_memory_mb

MEMORY_EVERY_S = 5.0


@dataclass
class Caller:
    """One caller's conversation: its room, utterances spoken, and (when, heard latency) of answers."""

    user: UUID
    room: str = ""
    spoken: int = 0
    answers: list[tuple[float, float]] = field(default_factory=list)


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


def wait_until_idle(admin_dsn: str, stack: str, *, timeout_s: float = 90) -> None:
    """Wait until the stack's workers hold no room (rooms other tests opened and left
    hold a slot until the agent's join timeout), as their heartbeats say."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "select rooms from public.live_stacks where stack = %s", [stack]
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {stack} workers still hold rooms: {row}")
            time.sleep(1)


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
        if await voice.wait_for_agent_audio(time.monotonic(), timeout_s=60) is None:
            return  # no agent came: spoken stays 0, which the caller of soak() sees
        await voice.wait_quiet(quiet_s=1.5, timeout_s=30)  # the greeting is over
        utterances = pocketsphinx_utterances()
        while time.monotonic() < until:
            wav = utterances[caller.spoken % len(utterances)].path
            ended = await voice.say(str(wav), then_silence_s=0.1)
            caller.spoken += 1
            reply = await voice.wait_for_agent_audio(ended, timeout_s=60)
            if reply is not None:
                caller.answers.append((ended - started, reply - ended))
            await voice.wait_quiet(quiet_s=1.5, timeout_s=30)
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


def recorded_user_turns(admin_dsn: str, rooms: list[str], *, wait_s: float = 30) -> dict[str, int]:
    """User turns stored per room, once the conversations have ended (or `wait_s` has passed)."""
    deadline = time.monotonic() + wait_s
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        while True:
            rows = conn.execute(
                """select c.room_name, c.status,
                          (select count(*) from public.turns t
                           where t.conversation_id = c.id and t.role = 'user')
                   from public.conversations c where c.room_name = any(%s)""",
                [rooms],
            ).fetchall()
            if all(status != "active" for _, status, _ in rows) and len(rows) == len(rooms):
                return {room: int(n) for room, _, n in rows}
            if time.monotonic() > deadline:
                return {room: int(n) for room, _, n in rows}
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
