"""Processes the stack starts: pidfiles that know their process, ports, health waits."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from stack.errors import StackError
from workbench.processes import PidFile, process_start_ticks


def tcp_port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def udp_port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if a UDP socket is already bound to host:port (or the wildcard)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def ensure_ports_free(
    service: str, tcp: Mapping[int, str] | None = None, udp: Mapping[int, str] | None = None
) -> None:
    """Raise a StackError naming a taken port and the variable that moves it.

    `tcp` and `udp` map each port to the setting that chooses it.
    """
    for protocol, ports, in_use in (("tcp", tcp, tcp_port_in_use), ("udp", udp, udp_port_in_use)):
        for port, setting in (ports or {}).items():
            if in_use(port):
                raise StackError(
                    f"{service}: port {port}/{protocol} on 127.0.0.1 is already in use by another "
                    f"program; stop it, or set {setting} to a free port"
                )


def open_private(path: Path) -> BinaryIO:
    """Open `path` for appending, readable by its owner only (also when it existed before)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def start_detached(
    command: Sequence[str],
    *,
    log_path: Path,
    pidfile: PidFile,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start `command` in its own session, output appended to `log_path`; record its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open_private(log_path) as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} start\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,  # survives the CLI and is stopped as a group by `down`
            # What services write under .local/ (mail with reset links, audio,
            # journals) is for the owner only.
            umask=0o077,
        )
    pidfile.write(proc.pid, command)
    return proc.pid


def stop_pid(pid: int, *, timeout_s: float = 15.0) -> None:
    """SIGTERM the process group of `pid`, then SIGKILL after `timeout_s`."""
    ticks = process_start_ticks(pid)
    if ticks is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process_start_ticks(pid) != ticks:
            return
        _reap(pid)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _reap(pid: int) -> None:
    # When the CLI process itself started the child (tests do), collect it so
    # it does not linger as a zombie that still looks alive.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(
    check: Callable[[], bool],
    *,
    timeout_s: float,
    service: str,
    log_path: Path | None,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll `check` until true; on timeout or death raise with the log's last lines."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise StackError(f"{service} exited during start-up." + log_excerpt(log_path))
        time.sleep(0.2)
    raise StackError(
        f"{service} did not become healthy within {timeout_s:.0f} s." + log_excerpt(log_path)
    )


def log_excerpt(log_path: Path | None, lines: int = 15) -> str:
    """The last `lines` lines of a log, formatted to follow an error message."""
    if log_path is None or not log_path.exists():
        return ""
    tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    return f"\nlast lines of {log_path}:\n    " + "\n    ".join(tail)
