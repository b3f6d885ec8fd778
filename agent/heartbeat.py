"""The worker announces itself in the database, so the web app knows which stacks can serve.

LiveKit dispatches a room to a worker by agent name but its server API does not
list the workers registered; a stack with no worker would take the room and
leave the user in silence. Every `interval_s` the worker's main process writes
one row (`public.agent_workers`): its stack and spec, whether its models answer
(agent/model_health.py), rooms held, and the memory of the worker with its job
processes. The web app offers a stack only while a ready worker's row is fresh
(`public.live_stacks`); a worker that stops removes its row, one that is killed
ages out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

import psycopg

from agent.metrics import READY, ROOMS
from agent.model_health import ModelHealth
from workbench.db.connection import Connect, service_session
from workbench.db.models import WorkerBeat
from workbench.db.repositories import WorkersRepo
from workbench.models.stack import StackSpec
from workbench.processes import process_tree_memory_mb

log = logging.getLogger("workbench.agent")

BEAT_INTERVAL_S = 5.0  # public.live_stacks counts a worker for three beats
# Reading the processes' memory maps costs ~60 ms of CPU for a worker with its job
# processes on 2 cores; memory moves slowly, so it is measured this often, not every beat.
MEMORY_INTERVAL_S = 60.0


class Heartbeat:
    """Writes this worker's row every `interval_s` from a thread of its own; `stop` removes it."""

    def __init__(
        self,
        *,
        connect: Connect,
        stack: StackSpec,
        agent_name: str,
        health: ModelHealth,
        rooms: Callable[[], int],
        max_rooms: int,
        interval_s: float = BEAT_INTERVAL_S,
    ) -> None:
        self.connect = connect
        self.stack = stack
        self.agent_name = agent_name
        self.health = health
        self.rooms = rooms
        self.max_rooms = max_rooms
        self.interval_s = interval_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._memory: tuple[float, str, int] | None = None  # (measured at, in state, MB)
        self._stop = False
        self._wake = threading.Event()  # set: beat now (the state changed, or stop)
        self._thread: threading.Thread | None = None
        health.on_change = self.nudge

    def beat(self) -> WorkerBeat:
        """This worker's state now."""
        state = self.health.state
        if state == "ready" and not self.health.registered:
            state = "loading"  # LiveKit cannot dispatch to it yet
        rooms = self.rooms()
        # The same facts for Prometheus (agent/metrics.py).
        READY.labels(self.stack.name).set(1 if state == "ready" else 0)
        ROOMS.labels(self.stack.name, "held").set(rooms)
        ROOMS.labels(self.stack.name, "slots").set(self.max_rooms)
        return WorkerBeat(
            id=self.worker_id,
            stack=self.stack.name,
            agent_name=self.agent_name,
            spec=self.stack.snapshot(),
            host=socket.gethostname()[:255],
            state=state,
            reason=self.health.reason[:2000],
            rooms=rooms,
            max_rooms=self.max_rooms,
            memory_mb=self._memory_mb(state),
        )

    def _memory_mb(self, state: str) -> int:
        """Measured again when the state changed (the models loaded) or after a while."""
        now = time.monotonic()
        last = self._memory
        if last is None or last[1] != state or now - last[0] >= MEMORY_INTERVAL_S:
            self._memory = last = (now, state, process_tree_memory_mb(os.getpid()))
        return last[2]

    async def announce(self) -> None:
        """Write one beat."""
        async with self.connect() as conn, service_session(conn):
            await WorkersRepo(conn).announce(self.beat())

    async def withdraw(self) -> None:
        """Remove this worker's row."""
        async with self.connect() as conn, service_session(conn):
            await WorkersRepo(conn).withdraw(self.worker_id)

    def start(self) -> None:
        """Beat in a background thread until `stop`."""
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Beat now rather than at the next interval (the models' state changed)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop beating and remove the row (best effort: a stale row ages out anyway)."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 5)
        try:
            asyncio.run(self.withdraw())
        except (psycopg.Error, OSError) as exc:
            log.warning("could not remove this worker's heartbeat row (%s)", exc)

    def _run(self) -> None:
        failing = False
        while True:
            self._wake.clear()  # a nudge from here on beats again after this beat
            try:
                asyncio.run(self.announce())
                if failing:
                    log.info("heartbeat stored again")
                failing = False
            except Exception as exc:  # a database outage must not end the worker
                if not failing:
                    log.warning("could not store the worker's heartbeat (%s); retrying", exc)
                failing = True
            self._wake.wait(self.interval_s)
            if self._stop:
                return
