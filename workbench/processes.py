"""Processes by pid: pidfiles that know their process (the agent's journal, the local stack)
and the memory a process tree holds (agent workers)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


def process_start_ticks(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces, so split after ")".
    fields = stat.rsplit(")", 1)[1].split()
    state = fields[0]
    if state == "Z":  # a zombie has exited; only its parent's wait() is missing
        return None
    return int(fields[19])


@dataclass(frozen=True)
class PidFile:
    """A pidfile recording pid and start time, so a reused pid is never mistaken for ours."""

    path: Path

    def write(self, pid: int, command: Sequence[str]) -> None:
        """Record `pid` (which must be alive) as this service's process."""
        ticks = process_start_ticks(pid)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(
            json.dumps({"pid": pid, "start_ticks": ticks, "command": list(command)})
        )

    def live_pid(self) -> int | None:
        """The recorded pid if that very process still runs; a stale file is removed."""
        try:
            record = json.loads(self.path.read_text())
            pid, ticks = int(record["pid"]), record["start_ticks"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            self.path.unlink(missing_ok=True)  # unreadable: it cannot identify a process
            return None
        if ticks is not None and process_start_ticks(pid) == ticks:
            return pid
        self.path.unlink(missing_ok=True)
        return None

    def clear(self) -> None:
        """Forget the process."""
        self.path.unlink(missing_ok=True)


def process_tree_memory_mb(pid: int) -> int:
    """Memory of process `pid` and its descendants (an agent worker's job processes), in MB.

    Proportional set size, so libraries and model files the processes share are
    counted once between them rather than once per process; RSS where the
    kernel does not say. 0 if the process is gone.
    """
    total = 0
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for proc in tree:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += getattr(info, "pss", info.rss)
    return total // (1024 * 1024)
