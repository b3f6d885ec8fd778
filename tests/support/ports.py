"""A free port to bind a test's own server to."""

from __future__ import annotations

import socket


def free_port(ip: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port nothing on `ip` listens on right now (TCP unless `kind` says UDP)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((ip, 0))
        return int(probe.getsockname()[1])
