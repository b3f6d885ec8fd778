"""The mail catcher as a stack service (a Python process, checked by an SMTP greeting)."""

from __future__ import annotations

import smtplib
import sys
from pathlib import Path

from stack.layout import StackLayout
from stack.managed import BinaryService


class MailService(BinaryService):
    """SMTP on 127.0.0.1 that saves messages under `.local/mail/`."""

    name = "mail"
    port_setting = "WORKBENCH_MAIL_PORT"
    scheme = "smtp"

    def __init__(self, layout: StackLayout, *, port: int) -> None:
        super().__init__(layout, port=port)
        self.folder = layout.local_dir / "mail"

    @property
    def url(self) -> str:
        return f"{super().url} (messages in {self.folder})"

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
        return self.python_environment()

    def healthy(self) -> bool:
        """It answers an SMTP NOOP."""
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=2) as smtp:
                return smtp.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False
