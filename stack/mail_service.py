"""The mail catcher as a stack service (a Python process, checked by an SMTP greeting)."""

from __future__ import annotations

import smtplib
import sys
from collections.abc import Mapping
from pathlib import Path

from stack.layout import StackLayout
from stack.managed import BinaryService


class MailService(BinaryService):
    """SMTP on 127.0.0.1 that saves messages under `.local/mail/`."""

    name = "mail"

    def __init__(self, layout: StackLayout, *, port: int) -> None:
        super().__init__(layout)
        self.port = port
        self.folder = layout.local_dir / "mail"

    @property
    def health_url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port} (messages in {self.folder})"

    def tcp_ports(self) -> Mapping[int, str]:
        return {self.port: "WORKBENCH_MAIL_PORT"}

    def prepare(self) -> None:
        self._binary = Path(sys.executable)

    def command(self, binary: Path) -> list[str]:
        return [
            str(binary),
            "-m",
            "stack.mailcatcher",
            "--port",
            str(self.port),
            "--dir",
            str(self.folder),
        ]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        # The checkout must be importable by the child whatever the caller's cwd.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return env

    def healthy(self) -> bool:
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=2) as smtp:
                return smtp.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False
