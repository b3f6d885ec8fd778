"""The local stack as a whole: bring up in dependency order, report, tear down."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stack.agent_service import AgentService
from stack.auth_server import AuthService
from stack.errors import StackError
from stack.layout import StackLayout
from stack.livekit_server import LiveKitService, node_ports
from stack.local_accounts import LocalAccount
from stack.mail_service import MailService
from stack.managed import BinaryService
from stack.postgres import PostgresService
from stack.processes import stop_pid
from stack.prometheus import PrometheusService
from stack.redis_service import RedisService
from stack.secrets import ensure_local_secrets
from stack.tls import ensure_certificates
from stack.tls_proxy import TlsProxyService
from stack.web_service import WebService
from workbench.config import Settings
from workbench.models.spec import SpecError
from workbench.models.stack import stack_file
from workbench.processes import PidFile

State = Literal["running", "unhealthy", "stopped"]


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
                "WORKBENCH_DEPLOYMENT=hosted: Supabase and LiveKit are remote, so there are no local "
                "services to manage; unset WORKBENCH_DEPLOYMENT (or set it to local) to run the "
                "embedded default"
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
            db_password=secrets["auth_admin_password"],
            jwt_secret=secrets["jwt_secret"],
            site_url=settings.public_url,
            smtp_port=settings.mail_port,
            confirm_email=settings.auth_confirm_email,
        )
        self.mail = MailService(self.layout, port=settings.mail_port)
        self.tls_proxy = _tls_proxy(settings, self.layout)
        # More than one LiveKit node: multi-node mode, the nodes sharing rooms through Redis.
        self.redis = (
            RedisService(self.layout, port=settings.redis_port)
            if settings.livekit_nodes > 1
            else None
        )
        first_ports = {
            "port": settings.livekit_port,
            "tcp_port": settings.livekit_tcp_port,
            "udp_port": settings.livekit_udp_port,
            "metrics_port": settings.livekit_metrics_port,
        }
        self.livekit_nodes = [
            LiveKitService(
                self.layout,
                **node_ports(first_ports, node),
                api_key=secrets["livekit_api_key"],
                api_secret=secrets["livekit_api_secret"],
                media_ip=self.tls_proxy.address if self.tls_proxy else "127.0.0.1",
                node=node,
                redis_address=self.redis.address if self.redis else None,
            )
            for node in range(1, settings.livekit_nodes + 1)
        ]
        self.livekit = self.livekit_nodes[0]  # the web app's (and browsers') node
        # `agent_workers` workers per stack conversations may run on (LiveKit gives each
        # room to the least loaded worker of its stack); ports count up from agent_port.
        workers = [
            (name, file, instance)
            for name, file in _stack_files(settings).items()
            for instance in range(1, settings.agent_workers + 1)
        ]
        # Each stack's workers spread over the LiveKit nodes (any node dispatches to any).
        self.agents = [
            AgentService(
                self.layout,
                port=settings.agent_port + i,
                stack=name,
                stack_file=file,
                instance=instance,
                livekit_url=self.livekit_nodes[(instance - 1) % len(self.livekit_nodes)].url
                if len(self.livekit_nodes) > 1
                else None,
            )
            for i, (name, file, instance) in enumerate(workers)
        ]
        self.web = WebService(
            self.layout, port=settings.panel_port, metrics_port=settings.panel_metrics_port
        )
        # Optional (WORKBENCH_PROMETHEUS=1): scrapes everything above on loopback.
        self.prometheus = PrometheusService(
            self.layout,
            port=settings.prometheus_port,
            targets={
                "agent": [f"127.0.0.1:{agent.port}" for agent in self.agents],
                "web": [f"127.0.0.1:{settings.panel_metrics_port}"],
                "livekit": [
                    f"127.0.0.1:{node.metrics_port}"
                    for node in self.livekit_nodes
                    if node.metrics_port
                ],
            },
        )
        self._role_passwords = {
            "authenticator": secrets["authenticator_password"],
            "supabase_auth_admin": secrets["auth_admin_password"],
        }
        self._service_role_key = secrets["service_role_key"]
        self.accounts_made: list[LocalAccount] = []  # by the last `up`, on a new database

    def up(self) -> list[ServiceReport]:
        """Bring every service up (idempotent); return their reports.

        Every failure raises StackError naming the fix, a binary that cannot be
        obtained included: a stack without sign-in or without LiveKit cannot
        serve its users, so it is never reported as up.
        """
        for directory in (self.layout.logs_dir, self.layout.run_dir, self.layout.storage_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._step("postgres", self.postgres.prepare, self.postgres.start)
        self.postgres.provision_roles(self._role_passwords)
        self._step("mail", self.mail.prepare, self.mail.start)
        # GoTrue runs its own migrations in `auth` before the app's, whose
        # triggers and foreign keys reference auth.users.
        self._step("auth", self.auth.prepare, self.auth.start)
        if self.redis is not None:
            self._step("redis", self.redis.prepare, self.redis.start)
        for node in self.livekit_nodes:
            self._step(node.name, node.prepare, node.start)
        applied = self.postgres.migrate()
        if applied:
            self._echo(f"applied migrations: {', '.join(applied)}")
        self.accounts_made = self.postgres.seed(
            auth_url=self.auth.url, service_role_key=self._service_role_key
        )
        for agent in self.agents:
            self._step(agent.name, agent.prepare, agent.start)
            self._echo(f"{'':<17}{agent.memory_mb()} MB with the {agent.stack} stack loaded")
        self._step("web", self.web.prepare, self.web.start)
        if self.tls_proxy is not None:
            self._step("tls-proxy", self.tls_proxy.prepare, self.tls_proxy.start)
        if self.settings.prometheus:
            self._step("prometheus", self.prometheus.prepare, self.prometheus.start)
        return self.status()

    @property
    def agent(self) -> AgentService:
        """The worker of the default stack (the one users get)."""
        return self.agents[0]

    @property
    def public_url(self) -> str:
        """What people open: the TLS proxy's https URL, or the web app on loopback."""
        return self.tls_proxy.url if self.tls_proxy is not None else self.web.url

    def _step(self, name: str, prepare: Callable[[], None], start: Callable[[], None]) -> None:
        # Prepare (a build, a model conversion) is timed apart from the start, so a
        # first `up` says what its first-time steps cost.
        t0 = time.monotonic()
        prepare()
        t1 = time.monotonic()
        start()
        t2 = time.monotonic()
        prepared = f"prepare {t1 - t0:.1f} s, " if t1 - t0 >= 1.0 else ""
        self._echo(f"{name:<16} up ({prepared}start {t2 - t1:.1f} s)")

    def down(self) -> list[str]:
        """Stop every process the stack started (by pidfile); names of those stopped."""
        stopped = []
        # The proxy is stopped by pidfile whether or not this `down` was told about TLS.
        proxy: BinaryService = self.tls_proxy or _TlsProxyPid(self.layout)
        for service in (self.prometheus, proxy, self.web):
            if service.stop():
                stopped.append(service.name)
        # Every worker an `up` started, also of stacks no longer configured.
        for name, was_running in self._stop_by_pidfiles(f"{AgentService.name_prefix}*.pid"):
            if was_running:
                stopped.append(name)
            (self.layout.run_dir / f"{name}-models.json").unlink(missing_ok=True)
        # Every LiveKit node and the Redis an `up` started, also of a larger cluster before.
        for pattern in (f"{LiveKitService.name_prefix}*.pid", f"{RedisService.name}.pid"):
            stopped += [name for name, ran in self._stop_by_pidfiles(pattern) if ran]
        for service in (self.auth, self.mail):
            if service.stop():
                stopped.append(service.name)
        if self.postgres.stop():
            stopped.append("postgres")
        return stopped

    def _stop_by_pidfiles(self, pattern: str) -> list[tuple[str, bool]]:
        """Stop each process whose pidfile in the run folder matches `pattern` and clear
        the pidfile; each pidfile's name, and whether its process was running."""
        found = []
        for pidfile in sorted(self.layout.run_dir.glob(pattern)):
            pid = PidFile(pidfile).live_pid()
            if pid is not None:
                stop_pid(pid)
            PidFile(pidfile).clear()
            found.append((pidfile.stem, pid is not None))
        return found

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
        services: list[BinaryService] = [
            self.mail,
            self.auth,
            *([self.redis] if self.redis else []),
            *self.livekit_nodes,
            *self.agents,
            self.web,
        ]
        if self.tls_proxy is not None:
            services.append(self.tls_proxy)
        if self.settings.prometheus or self.prometheus.running():
            services.append(self.prometheus)
        for service in services:
            reports.append(
                ServiceReport(
                    service.name,
                    _state(service.running(), service.healthy),
                    service.url,
                    service.pid(),
                    service.status_detail(),
                )
            )
        return reports


def _stack_files(settings: Settings) -> dict[str, Path]:
    """The stack file of each stack in WORKBENCH_AGENT_STACKS (a name not found is an error)."""
    try:
        return {name: stack_file(name) for name in settings.stack_names}
    except SpecError as exc:
        raise StackError(f"WORKBENCH_AGENT_STACKS: {exc}") from None


def _tls_proxy(settings: Settings, layout: StackLayout) -> TlsProxyService | None:
    """The HTTPS front (WORKBENCH_TLS_HOST), with its certificate made or renewed; None without TLS."""
    if not settings.tls_host:
        return None
    address = settings.tls_address
    if address is None:
        try:
            address = socket.gethostbyname(settings.tls_host)
        except OSError:
            raise StackError(
                f"WORKBENCH_TLS_HOST={settings.tls_host} does not resolve here; set "
                "WORKBENCH_TLS_ADDRESS to this machine's address that people reach"
            ) from None
    files = ensure_certificates(
        layout.local_dir / "tls",
        settings.tls_host,
        addresses=[address],
        own_cert=settings.tls_cert,
        own_key=settings.tls_key,
    )
    return TlsProxyService(
        layout,
        hostname=settings.tls_host,
        address=address,
        port=settings.tls_port,
        tls=files,
        web_upstream=f"127.0.0.1:{settings.panel_port}",
        livekit_upstream=f"127.0.0.1:{settings.livekit_port}",
    )


class _TlsProxyPid(BinaryService):
    """Only the proxy's pidfile: lets `down` stop a proxy an earlier `up --tls` started."""

    name = TlsProxyService.name
    port_setting = TlsProxyService.port_setting

    def __init__(self, layout: StackLayout) -> None:
        super().__init__(layout, port=0)

    def command(self, binary: Path) -> list[str]:
        raise NotImplementedError


def _state(running: bool, healthy: Callable[[], bool]) -> State:
    if not running:
        return "stopped"
    return "running" if healthy() else "unhealthy"
