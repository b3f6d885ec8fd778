"""Test hosts in a network namespace of the test run's own (see ARCHITECTURE, network rule).

libwebrtc skips loopback adapters, so a namespace holding a veth pair gives
WebRTC peers real host candidates while no packet can leave the machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Namespace:
    """A namespace with a veth pair: `server_ip` on one end, `client_ip` on the other."""

    name: str
    server_ip: str
    client_ip: str
    cidr: str

    def command(self, *argv: str) -> list[str]:
        """`argv` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]


def namespaces_unavailable() -> str | None:
    """Why this machine cannot make namespaces for tests, or None if it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2 (`ip`)"
    return None


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


@contextmanager
def veth_namespace() -> Iterator[Namespace]:
    """Create the namespace, yield it, and delete it (with its links) afterwards.

    Callers stop the processes they started inside before the block ends.
    """
    name = f"vwb-{os.getpid()}-{secrets.token_hex(2)}"
    subnet = f"10.77.{secrets.randbelow(200) + 20}"
    namespace = Namespace(name, f"{subnet}.1", f"{subnet}.2", f"{subnet}.0/24")
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        _ip("-n", name, "addr", "add", f"{namespace.server_ip}/24", "dev", "v0")
        _ip("-n", name, "addr", "add", f"{namespace.client_ip}/24", "dev", "v1")
        _ip("-n", name, "link", "set", "v0", "up")
        _ip("-n", name, "link", "set", "v1", "up")
        yield namespace
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
