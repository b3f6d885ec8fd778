"""A local SMTP server that keeps every message as a file (Supabase's local stack runs Mailpit).

Supabase Auth sends confirmation and password-recovery mail here; tests and
people read it from `.local/mail/` (`read_messages`, `links_in`).

    python -m stack.mailcatcher --port 54325 --dir .local/mail
"""

from __future__ import annotations

import argparse
import email
import email.policy
import re
import signal
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

_URL = re.compile(r"https?://[^\s\"'<>]+")


class _SaveToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._count = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self._count += 1
            name = f"{time.time_ns()}-{self._count}.eml"
        tmp = self.folder / (name + ".part")
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(self.folder / name)  # readers never see half a message
        return "250 Message accepted for delivery"


def read_messages(folder: Path, *, to: str | None = None) -> list[EmailMessage]:
    """Captured messages, oldest first; only those addressed to `to` if given."""
    messages = []
    for path in sorted(folder.glob("*.eml"), key=lambda p: int(p.name.split("-", 1)[0])):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if to is None or to.lower() in str(message.get("To", "")).lower():
            messages.append(message)
    return messages


def links_in(message: EmailMessage) -> list[str]:
    """The URLs in a message's text and HTML parts (HTML entities decoded)."""
    links: list[str] = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            text = str(part.get_content()).replace("&amp;", "&")
            links += _URL.findall(text)
    return list(dict.fromkeys(links))


def main() -> int:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    controller = Controller(_SaveToFolder(args.dir), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"mailcatcher listening on 127.0.0.1:{args.port}, saving to {args.dir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
