"""Test hosts in network namespaces of the test run's own (see ARCHITECTURE, network rule).

Two namespaces joined by a veth pair, like two machines on a private link: the
server host holds `server_ip`, the client host `client_ip`. Packets really cross
the link (with both ends in one namespace the kernel routes them through `lo`,
and WebRTC calls there failed ICE now and then), and nothing can leave the machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Hosts:
    """A server host and a client host on a private /24."""

    server_ns: str
    client_ns: str
    server_ip: str
    client_ip: str
    cidr: str

    def on_server(self, *argv: str) -> list[str]:
        """`argv` run on the server host."""
        return ["ip", "netns", "exec", self.server_ns, *argv]

    def on_client(self, *argv: str) -> list[str]:
        """`argv` run on the client host."""
        return ["ip", "netns", "exec", self.client_ns, *argv]


def wrapper_in_namespace(namespace: str, binary: str, directory: Path) -> Path:
    """An executable that runs `binary` (with its arguments) on the host `namespace`.

    For programs another library launches by path, such as Playwright's Chromium.
    """
    wrapper = directory / f"{Path(binary).name}-in-{namespace}"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {namespace} {binary} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


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
def two_hosts() -> Iterator[Hosts]:
    """Create both namespaces and the link, yield them, delete them afterwards.

    Callers stop the processes they started inside before the block ends.
    """
    tag = f"{os.getpid()}-{secrets.token_hex(2)}"
    subnet = f"10.77.{secrets.randbelow(200) + 20}"
    hosts = Hosts(f"vwb-s-{tag}", f"vwb-c-{tag}", f"{subnet}.1", f"{subnet}.2", f"{subnet}.0/24")
    created: list[str] = []
    try:
        for ns in (hosts.server_ns, hosts.client_ns):
            _ip("netns", "add", ns)
            created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip(
            "-n",
            hosts.server_ns,
            "link",
            "add",
            "v0",
            "type",
            "veth",
            "peer",
            "name",
            "v1",
            "netns",
            hosts.client_ns,
        )
        _ip("-n", hosts.server_ns, "addr", "add", f"{hosts.server_ip}/24", "dev", "v0")
        _ip("-n", hosts.client_ns, "addr", "add", f"{hosts.client_ip}/24", "dev", "v1")
        _ip("-n", hosts.server_ns, "link", "set", "v0", "up")
        _ip("-n", hosts.client_ns, "link", "set", "v1", "up")
        yield hosts
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


@contextmanager
def client_host() -> Iterator[Hosts]:
    """One client namespace linked by a veth pair to this (the root) namespace as the server host.

    For servers that must reach the stack's own loopback services (Postgres):
    they run here and listen on `server_ip`; the client (a browser) runs in
    `client_ns`. The two ends are in different namespaces, so packets really
    cross the link.
    """
    tag = secrets.token_hex(4)
    subnet = f"10.78.{secrets.randbelow(200) + 20}"
    hosts = Hosts("", f"vwb-b-{tag}", f"{subnet}.1", f"{subnet}.2", f"{subnet}.0/24")
    link = f"vwb{tag}"
    created = False
    try:
        _ip("netns", "add", hosts.client_ns)
        created = True
        _ip("-n", hosts.client_ns, "link", "set", "lo", "up")
        _ip("link", "add", link, "type", "veth", "peer", "name", "v1", "netns", hosts.client_ns)
        _ip("addr", "add", f"{hosts.server_ip}/24", "dev", link)
        _ip("link", "set", link, "up")
        _ip("-n", hosts.client_ns, "addr", "add", f"{hosts.client_ip}/24", "dev", "v1")
        _ip("-n", hosts.client_ns, "link", "set", "v1", "up")
        yield hosts
    finally:
        subprocess.run(["ip", "link", "del", link], check=False, capture_output=True)
        if created:
            subprocess.run(
                ["ip", "netns", "del", hosts.client_ns], check=False, capture_output=True
            )
