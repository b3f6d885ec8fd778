"""Whether the worker's job processes can load and run the models: the truth behind "ready".

livekit-agents restarts a job process that dies while it initialises, forever,
and its health endpoint keeps answering 200 because the worker itself is
registered. A stack whose models crash (a native build using instructions this
CPU lacks, a missing model file) was therefore reported healthy while no room
could get an answer. This tracker watches the process pool: a process counts as
ready once `prewarm` loaded the models and answered a warm-up turn; one that
exits before that, or dies of a signal later, is a failure with its reason.
After `max_failures` in a row the worker gives up instead of looping.

The state is served at `/models` on the worker's HTTP port (200 only when
ready) and written to a JSON file (`WORKBENCH_AGENT_STATUS_FILE`), which
outlives the worker for `./dev status`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

log = logging.getLogger("workbench.agent")

State = Literal["loading", "ready", "failed", "gave_up"]
MAX_CONSECUTIVE_FAILURES = 3


def describe_exit(exitcode: int | None) -> str:
    """ "exit code 1", "killed by SIGSEGV", or "no exit code" for a process that is gone."""
    if exitcode is None:
        return "no exit code"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class ModelHealth:
    """Counts job processes that became ready and those that failed, in a row."""

    def __init__(
        self,
        *,
        status_file: Path | None,
        max_failures: int = MAX_CONSECUTIVE_FAILURES,
        on_give_up: Callable[[str], None] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.status_file = status_file
        self.max_failures = max_failures
        self.on_give_up = on_give_up
        self.on_failure = on_failure  # each failure, e.g. counted for Prometheus
        self.on_change: Callable[[], None] | None = None  # e.g. the heartbeat, to beat now
        self.consecutive_failures = 0
        self.ever_ready = False
        self.gave_up = False
        self.registered = False  # with LiveKit: until then no room can be dispatched to it
        self.reason = ""
        self._ready_pids: set[int] = set()
        self._write()

    @property
    def state(self) -> State:
        """loading (no process ready yet), ready, failed (the last attempts), gave_up."""
        if self.gave_up:
            return "gave_up"
        if self.consecutive_failures:
            return "failed"
        return "ready" if self.ever_ready else "loading"

    def snapshot(self) -> dict[str, Any]:
        """The state as JSON-able data."""
        return {
            "state": self.state,
            "reason": self.reason,
            "consecutive_failures": self.consecutive_failures,
            "max_failures": self.max_failures,
            "processes_ready": len(self._ready_pids),
            "registered": self.registered,
            "worker_pid": os.getpid(),
            "updated_at": time.time(),
        }

    def process_ready(self, pid: int | None) -> None:
        """A job process loaded its models and answered the warm-up."""
        if pid is not None:
            self._ready_pids.add(pid)
        self.ever_ready = True
        self.consecutive_failures = 0
        self.reason = ""
        self._write()

    def process_closed(
        self, pid: int | None, exitcode: int | None, *, killed: bool, shutting_down: bool
    ) -> None:
        """A job process ended: a failure if it never got ready or if it crashed later.

        A process that never initialised counts even when the pool killed it (that
        is how the pool ends a process whose set-up raised); only the worker's own
        shutdown is not a failure.
        """
        if self.gave_up:
            return  # the verdict stands while the worker shuts down
        was_ready = pid is not None and pid in self._ready_pids
        if pid is not None:
            self._ready_pids.discard(pid)
        crashed = exitcode is not None and exitcode < 0 and not killed
        if shutting_down or (was_ready and not crashed):
            self._write()
            return
        phase = "after loading its models" if was_ready else "before its models loaded"
        self.consecutive_failures += 1
        if self.on_failure is not None:
            self.on_failure()
        self.reason = (
            f"models failed to load: a job process ended {phase} ({describe_exit(exitcode)}); "
            f"{self.consecutive_failures} failure(s) in a row"
        )
        log.error(self.reason)
        if self.consecutive_failures >= self.max_failures:
            self.gave_up = True
            self.reason += (
                f"; the worker stopped restarting job processes after {self.max_failures}"
            )
            self._write()
            if self.on_give_up is not None:
                self.on_give_up(self.reason)
            return
        self._write()

    def worker_registered(self) -> None:
        """The worker registered with LiveKit (rooms can be dispatched to it now)."""
        self.registered = True
        self._write()

    async def handle(self, _request: web.Request) -> web.Response:
        """GET /models: the snapshot; 200 when ready and registered, 503 otherwise."""
        serving = self.state == "ready" and self.registered
        return web.json_response(self.snapshot(), status=200 if serving else 503)

    def _write(self) -> None:
        if self.on_change is not None:
            self.on_change()
        if self.status_file is None:
            return
        self.status_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        tmp.replace(self.status_file)
