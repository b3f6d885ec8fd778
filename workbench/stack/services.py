"""The local stack as a whole: bring up in dependency order, report, tear down."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from workbench.config import Settings
from workbench.stack.agent_service import AgentService
from workbench.stack.auth_server import AuthService
from workbench.stack.errors import ArtefactUnavailable, StackError
from workbench.stack.layout import StackLayout
from workbench.stack.livekit_server import LiveKitService
from workbench.stack.mail_service import MailService
from workbench.stack.postgres import PostgresService
from workbench.stack.secrets import ensure_local_secrets
from workbench.stack.web_service import WebService

State = Literal["running", "unhealthy", "stopped", "unavailable"]


@dataclass(frozen=True)
class ServiceReport:
    """One line of `status`."""

    name: str
    state: State
    url: str
    pid: int | None = None
    detail: str = ""


class LocalStack:
    """Postgres, a mail catcher, Supabase Auth, LiveKit, the agent worker and the web app, on loopback."""

    def __init__(self, settings: Settings, *, echo: Callable[[str], None] = print) -> None:
        if not settings.is_local:
            raise StackError(
                "WORKBENCH_STACK=hosted: Supabase and LiveKit are remote, so there is no local stack to "
                "manage; unset WORKBENCH_STACK (or set it to local) to run the embedded default"
            )
        self.settings = settings
        self.layout = StackLayout.from_settings(settings)
        self._echo = echo
        secrets = ensure_local_secrets(self.layout.local_dir)
        self.postgres = PostgresService(
            self.layout, port=settings.postgres_port, password=secrets["postgres_password"]
        )
        self.auth = AuthService(
            self.layout,
            port=settings.auth_port,
            postgres_port=settings.postgres_port,
            db_password=secrets["postgres_password"],
            jwt_secret=secrets["jwt_secret"],
            site_url=f"http://127.0.0.1:{settings.panel_port}",
            smtp_port=settings.mail_port,
        )
        self.mail = MailService(self.layout, port=settings.mail_port)
        self.livekit = LiveKitService(
            self.layout,
            port=settings.livekit_port,
            tcp_port=settings.livekit_tcp_port,
            udp_port=settings.livekit_udp_port,
            api_key=secrets["livekit_api_key"],
            api_secret=secrets["livekit_api_secret"],
        )
        self.agent = AgentService(
            self.layout, port=settings.agent_port, stack_file=settings.agent_stack
        )
        self.web = WebService(self.layout, port=settings.panel_port)
        self._role_password = secrets["postgres_password"]

    def _unavailable_marker(self, name: str) -> Path:
        return self.layout.run_dir / f"{name}.unavailable"

    def unavailable_reason(self, name: str) -> str | None:
        """Why a service's binary could not be obtained at the last `up`, if it could not."""
        marker = self._unavailable_marker(name)
        return marker.read_text().strip() if marker.exists() else None

    def up(self) -> list[ServiceReport]:
        """Bring every service up (idempotent); return their reports.

        A service whose binary cannot be obtained on this machine is reported
        `unavailable` with the reason; every other failure raises StackError.
        """
        for directory in (self.layout.logs_dir, self.layout.run_dir, self.layout.storage_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._step("postgres", self.postgres.prepare, self.postgres.start)
        self.postgres.provision_roles(self._role_password)
        self._step("mail", self.mail.prepare, self.mail.start)
        # GoTrue runs its own migrations in `auth` before the app's, whose
        # triggers and foreign keys reference auth.users.
        for service in (self.auth, self.livekit):
            marker = self._unavailable_marker(service.name)
            try:
                self._step(service.name, service.prepare, service.start)
                marker.unlink(missing_ok=True)
            except ArtefactUnavailable as exc:
                marker.write_text(str(exc))
                self._echo(f"WARNING {exc}")
        applied = self.postgres.migrate()
        if applied:
            self._echo(f"applied migrations: {', '.join(applied)}")
        if self.unavailable_reason("livekit") is None:
            self._step("agent", self.agent.prepare, self.agent.start)
        self._step("web", self.web.prepare, self.web.start)
        return self.status()

    def _step(self, name: str, prepare: Callable[[], None], start: Callable[[], None]) -> None:
        t0 = time.monotonic()
        prepare()
        start()
        self._echo(f"{name:<9} up ({time.monotonic() - t0:.1f} s)")

    def down(self) -> list[str]:
        """Stop every process the stack started (by pidfile); names of those stopped."""
        stopped = []
        for service in (self.web, self.agent, self.livekit, self.auth, self.mail):
            if service.stop():
                stopped.append(service.name)
        if self.postgres.stop():
            stopped.append("postgres")
        return stopped

    def status(self) -> list[ServiceReport]:
        """State of each service, checked live."""
        reports = [
            ServiceReport(
                "postgres",
                _state(self.postgres.running(), self.postgres.healthy),
                f"postgresql://127.0.0.1:{self.settings.postgres_port}/postgres",
                self.postgres.pid() if self.postgres.running() else None,
            )
        ]
        for service in (self.mail, self.auth, self.livekit, self.agent, self.web):
            reason = self.unavailable_reason(service.name)
            running = service.running()
            if reason and not running:
                reports.append(
                    ServiceReport(service.name, "unavailable", service.url, None, reason)
                )
            else:
                reports.append(
                    ServiceReport(
                        service.name, _state(running, service.healthy), service.url, service.pid()
                    )
                )
        return reports


def _state(running: bool, healthy: Callable[[], bool]) -> State:
    if not running:
        return "stopped"
    return "running" if healthy() else "unhealthy"
