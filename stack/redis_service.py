"""Redis (Debian's redis-server) on loopback: where LiveKit nodes share rooms in multi-node mode.

Started only with more than one LiveKit node (WORKBENCH_LIVEKIT_NODES). It holds
LiveKit's routing state (which node hosts which room, the nodes' load) and
carries their messages; nothing is written to disk, so a restart starts clean,
as LiveKit expects of a fresh cluster.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, BinaryIO

from stack.debian import ensure_debian_binary, library_path
from stack.managed import BinaryService

REDIS_PACKAGE = "redis-server"


def redis_command(address: tuple[str, int], *words: str, timeout_s: float = 2.0) -> Any:
    """Send one command (RESP) and return its parsed reply: bytes, an int, a list, or None.

    Enough for PING and HGETALL; replies are read by their stated lengths, so values
    holding CR LF (LiveKit stores protobuf in its hashes) come back whole.
    """
    request = f"*{len(words)}\r\n".encode() + b"".join(
        f"${len(w.encode())}\r\n{w}\r\n".encode() for w in words
    )
    with socket.create_connection(address, timeout=timeout_s) as conn:
        conn.sendall(request)
        return _read_reply(conn.makefile("rb"))


def _read_reply(stream: BinaryIO) -> Any:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("redis closed the connection mid-reply")
    kind, body = line[:1], line[1:-2]
    if kind == b"-":
        raise ConnectionError(f"redis: {body.decode(errors='replace')}")
    if kind == b"+":
        return body
    if kind == b":":
        return int(body)
    length = int(body)
    if length < 0:
        return None
    if kind == b"$":
        return stream.read(length + 2)[:-2]
    return [_read_reply(stream) for _ in range(length)]  # "*": an array


def redis_hash(address: tuple[str, int], key: str) -> dict[str, bytes]:
    """HGETALL `key` as field -> raw value."""
    items = redis_command(address, "HGETALL", key) or []
    return {items[i].decode(): items[i + 1] for i in range(0, len(items), 2)}


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
            return bool(redis_command(("127.0.0.1", self.port), "PING") == b"PONG")
        except (OSError, ValueError):
            return False
