"""Redis (Debian's redis-server) on loopback: where LiveKit nodes share rooms in multi-node mode.

Started only with more than one LiveKit node (WORKBENCH_LIVEKIT_NODES). It holds
LiveKit's routing state (which node hosts which room, the nodes' load) and
carries their messages; nothing is written to disk, so a restart starts clean,
as LiveKit expects of a fresh cluster.
"""

from __future__ import annotations

import socket
from pathlib import Path

from stack.debian import ensure_debian_binary, library_path
from stack.managed import BinaryService

REDIS_PACKAGE = "redis-server"


def redis_command(address: tuple[str, int], *words: str, timeout_s: float = 2.0) -> bytes:
    """Send one command (RESP) and return the raw reply; enough for PING and HGETALL."""
    request = f"*{len(words)}\r\n".encode() + b"".join(
        f"${len(w.encode())}\r\n{w}\r\n".encode() for w in words
    )
    with socket.create_connection(address, timeout=timeout_s) as conn:
        conn.sendall(request)
        conn.settimeout(timeout_s)
        reply = b""
        while not reply.endswith(b"\r\n") or _incomplete(reply):
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


def _incomplete(reply: bytes) -> bool:
    """True while a multi-bulk or bulk reply has not arrived whole."""
    lines = reply.split(b"\r\n")
    if reply.startswith(b"*"):
        expected = int(lines[0][1:])
        # each element: a "$len" line and its data line
        return expected > 0 and len(lines) - 2 < 2 * expected
    if reply.startswith(b"$"):
        return int(lines[0][1:]) >= 0 and len(lines) < 3
    return False


def redis_hash(address: tuple[str, int], key: str) -> dict[str, bytes]:
    """HGETALL `key` as field -> raw value."""
    lines = redis_command(address, "HGETALL", key).split(b"\r\n")
    values = [lines[i] for i in range(2, len(lines), 2)][: 2 * int(lines[0][1:] or 0)]
    return {values[i].decode(): values[i + 1] for i in range(0, len(values) - 1, 2)}


class RedisService(BinaryService):
    """redis-server on 127.0.0.1:`port`; healthy when it answers PING."""

    name = "redis"
    port_setting = "WORKBENCH_REDIS_PORT"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """host:port as LiveKit's config takes it."""
        return f"127.0.0.1:{self.port}"

    def prepare(self) -> None:
        self._binary = ensure_debian_binary(
            REDIS_PACKAGE,
            "usr/bin/redis-server",
            cache_dir=self.layout.cache_dir,
            log_path=self.layout.logs_dir / "build-redis.log",
            # The server binary is redis-tools' (redis-server links to it; it must be
            # started by that name), with the libraries it links.
            also=("redis-tools", "libjemalloc2", "liblzf1"),
        )

    def environment(self) -> dict[str, str]:
        env = super().environment()
        libraries = library_path(self._binary) if self._binary else None
        if libraries:
            env["LD_LIBRARY_PATH"] = libraries
        return env

    def command(self, binary: Path) -> list[str]:
        return [
            str(binary),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--protected-mode",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.layout.run_dir),
        ]

    def healthy(self) -> bool:
        try:
            return redis_command(("127.0.0.1", self.port), "PING") == b"+PONG\r\n"
        except OSError:
            return False
