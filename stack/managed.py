"""A service run from a cached binary, tracked by pidfile, checked over HTTP."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import httpx

from stack.errors import StackError
from stack.gobuild import GoBinary, binary_origin, ensure_go_binary
from stack.layout import StackLayout
from stack.processes import (
    ensure_ports_free,
    start_detached,
    stop_pid,
    wait_until,
)
from workbench.config import REPO_ROOT
from workbench.processes import PidFile


def checkout_python_environment() -> dict[str, str]:
    """Our environment with this checkout first on PYTHONPATH, for services run as `python -m ...`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class BinaryService(ABC):
    """Start/stop/health for one process the stack owns, listening on `port` on loopback.

    A service states its facts as data: the setting that moves its port, the path
    that answers 200 when it is ready, the scheme clients use.
    """

    name: str  # a class attribute; services that run one instance per item set it per instance
    port_setting: ClassVar[str]  # the variable that chooses `port`, named in errors
    health_path: ClassVar[str] = "/"
    scheme: ClassVar[str] = "http"
    binary_spec: ClassVar[GoBinary | None] = None  # None: prepare() is overridden
    start_timeout_s: ClassVar[float] = 60.0

    def __init__(self, layout: StackLayout, *, port: int) -> None:
        self.layout = layout
        self.port = port
        self.log_path = layout.logs_dir / f"{self.name}.log"
        self.pidfile = PidFile(layout.run_dir / f"{self.name}.pid")
        self._binary: Path | None = None

    @property
    def health_url(self) -> str:
        """GET answers 200 when the service is ready."""
        return f"http://127.0.0.1:{self.port}{self.health_path}"

    @property
    def url(self) -> str:
        """What a client connects to."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def python_environment(self) -> dict[str, str]:
        """For services run as `python -m ...` from this checkout: its path first, the port set."""
        env = checkout_python_environment()
        env[self.port_setting] = str(self.port)
        return env

    @abstractmethod
    def command(self, binary: Path) -> list[str]:
        """The command line, given the binary."""

    def environment(self) -> dict[str, str]:
        """Environment of the process (defaults to ours)."""
        return dict(os.environ)

    def tcp_ports(self) -> Mapping[int, str]:
        """TCP ports it binds on 127.0.0.1, each with the setting that chooses it."""
        return {self.port: self.port_setting}

    def udp_ports(self) -> Mapping[int, str]:
        """UDP ports it binds on 127.0.0.1, each with the setting that chooses it."""
        return {}

    def prepare(self) -> None:
        """Build (once) or locate the binary; may raise ArtefactUnavailable."""
        assert self.binary_spec is not None, f"{self.name} must override prepare()"
        self._binary = ensure_go_binary(
            self.binary_spec,
            cache_dir=self.layout.cache_dir,
            log_path=self.layout.logs_dir / f"build-{self.name}.log",
        ).path

    def status_detail(self) -> str:
        """A line for `status` under the service's state: how its binary was obtained."""
        if self.binary_spec is None:
            return ""
        return "binary: " + (
            binary_origin(self.binary_spec, cache_dir=self.layout.cache_dir) or "not built yet"
        )

    def pid(self) -> int | None:
        """Pid of the running process we started, if any."""
        return self.pidfile.live_pid()

    def running(self) -> bool:
        """True while the process we started lives."""
        return self.pid() is not None

    def healthy(self) -> bool:
        """True if the health endpoint answers 200."""
        try:
            return httpx.get(self.health_url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        """Start unless already running, then wait for health (error names the log)."""
        if self._binary is None:
            raise StackError(f"{self.name}: prepare() must run before start()")
        if self.running():
            if not self.healthy():
                wait_until(
                    self.healthy,
                    timeout_s=self.start_timeout_s,
                    service=self.name,
                    log_path=self.log_path,
                    alive=self.running,
                )
            return
        ensure_ports_free(self.name, tcp=self.tcp_ports(), udp=self.udp_ports())
        start_detached(
            self.command(self._binary),
            log_path=self.log_path,
            pidfile=self.pidfile,
            env=self.environment(),
        )
        wait_until(
            self.healthy,
            timeout_s=self.start_timeout_s,
            service=self.name,
            log_path=self.log_path,
            alive=self.running,
        )

    def stop(self) -> bool:
        """Stop the process we started; True if one was running."""
        pid = self.pid()
        if pid is None:
            return False
        stop_pid(pid)
        self.pidfile.clear()
        return True
