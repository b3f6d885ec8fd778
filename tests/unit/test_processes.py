"""Pidfiles that cannot be fooled by stale or reused pids; ports; health waits that show the log."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stack.errors import StackError
from stack.processes import (
    ensure_ports_free,
    start_detached,
    stop_pid,
    tcp_port_in_use,
    wait_until,
)
from workbench.processes import PidFile

pytestmark = pytest.mark.unit


def test_started_process_is_tracked_and_stopped(tmp_path: Path) -> None:
    pidfile = PidFile(tmp_path / "run" / "sleeper.pid")
    pid = start_detached(
        [sys.executable, "-c", "import time; print('hello', flush=True); time.sleep(60)"],
        log_path=tmp_path / "logs" / "sleeper.log",
        pidfile=pidfile,
    )
    assert pidfile.live_pid() == pid
    wait_until(
        lambda: "hello" in (tmp_path / "logs" / "sleeper.log").read_text(),
        timeout_s=10,
        service="sleeper",
        log_path=None,
    )
    stop_pid(pid, timeout_s=5)
    assert pidfile.live_pid() is None
    assert not pidfile.path.exists()  # stale file removed on read


def test_stale_pidfile_of_a_dead_process_is_ignored(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    pidfile = PidFile(tmp_path / "dead.pid")
    pidfile.path.write_text(f'{{"pid": {proc.pid}, "start_ticks": 1, "command": []}}')
    assert pidfile.live_pid() is None


def test_reused_pid_is_not_mistaken_for_ours(tmp_path: Path) -> None:
    # A live process whose start time differs from the recorded one is not ours.
    pidfile = PidFile(tmp_path / "reused.pid")
    pidfile.path.write_text(f'{{"pid": {os.getpid()}, "start_ticks": 12345, "command": []}}')
    assert pidfile.live_pid() is None


@pytest.mark.parametrize("content", ["", "{", '{"pid": "x"}', "[]"])
def test_garbled_pidfile_is_ignored(tmp_path: Path, content: str) -> None:
    pidfile = PidFile(tmp_path / "garbled.pid")
    pidfile.path.write_text(content)
    assert pidfile.live_pid() is None


def test_taken_port_is_reported_with_the_fix() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert tcp_port_in_use(port)
        with pytest.raises(
            StackError, match=rf"port {port}/tcp .*already in use.* set DEMO_PORT to a free port"
        ):
            ensure_ports_free("demo", tcp={port: "DEMO_PORT"})


def test_taken_udp_port_is_reported() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(StackError, match=rf"port {port}/udp"):
            ensure_ports_free("demo", udp={port: "DEMO_UDP_PORT"})


def test_health_timeout_shows_the_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    log.write_text("\n".join(f"line {i}" for i in range(30)) + "\nFATAL: cannot bind")
    t0 = time.monotonic()
    with pytest.raises(
        StackError, match=r"(?s)svc did not become healthy.*FATAL: cannot bind"
    ) as excinfo:
        wait_until(lambda: False, timeout_s=0.5, service="svc", log_path=log)
    assert time.monotonic() - t0 < 5
    assert "line 5\n" not in str(excinfo.value)  # only the tail


def test_death_during_startup_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="svc exited during start-up"):
        wait_until(lambda: False, timeout_s=30, service="svc", log_path=None, alive=lambda: False)


def test_a_second_dev_waits_for_the_first_to_set_up(tmp_path: Path) -> None:
    """Two ./dev commands on a fresh machine: the second waits for the first's set-up,
    instead of building the same venv over it (both used to fail, half-written)."""
    import fcntl

    from workbench.config import REPO_ROOT

    lock_path = tmp_path / "setup.lock"
    with lock_path.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a first ./dev does while it sets up
        second = subprocess.Popen(
            [str(REPO_ROOT / "dev"), "python", "-c", "pass"],
            env={**os.environ, "WORKBENCH_CACHE_DIR": str(tmp_path)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group, so the wait is stopped with it
        )
        try:
            time.sleep(3)
            assert second.poll() is None, "the second ./dev did not wait"
            assert not (tmp_path / "venvs").exists(), (
                "the second ./dev built while the first held the lock"
            )
        finally:
            os.killpg(second.pid, 9)
            output, _ = second.communicate()
    assert "waiting for it to finish" in output
