"""Files only their owner may read (local secrets, passwords, TLS keys), written safely.

Each is written to a fresh temporary file created with O_EXCL and mode 0600 before
any byte is written (so no other user ever sees it readable, and a file or
symlink planted at the temporary name is refused, not followed or reused), then
renamed over the target in one step (a reader sees the old file or the new one).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_private(path: Path, data: bytes | str) -> None:
    """Replace `path` with `data`, readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by a process that died here; O_EXCL would refuse it
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
