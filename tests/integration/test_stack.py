"""The local stack: up, status, idempotence, crash recovery and the faults a user meets."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from stack.agent_service import AgentService
from stack.cli import main as stack_cli
from stack.errors import StackError
from stack.layout import StackLayout
from stack.postgres import PostgresService
from stack.services import LocalStack
from stack.tls import ensure_certificates
from stack.tls_proxy import CLIENT_HEADER_TIMEOUT_S, TlsProxyService
from workbench.config import REPO_ROOT

pytestmark = pytest.mark.integration


def _states(stack: LocalStack) -> dict[str, str]:
    return {report.name: report.state for report in stack.status()}


def test_every_service_is_up_and_says_where_its_binary_came_from(stack: LocalStack) -> None:
    reports = {report.name: report for report in stack.status()}
    assert {name: report.state for name, report in reports.items()} == dict.fromkeys(
        ("postgres", "mail", "auth", "livekit", "agent-cpu-small", "web"), "running"
    )
    # A worker per stack; its line says what it holds in memory with its models loaded.
    assert re.fullmatch(r"\d+ MB with its job processes", reports["agent-cpu-small"].detail)
    # Built by `go install`, from the vendored source, or given prebuilt: status says which.
    assert re.search(
        r"binary: (cache, built |prebuilt \(WORKBENCH_AUTH_BIN\))", reports["auth"].detail
    )
    assert reports["livekit"].detail.startswith("binary: ")


def test_up_is_idempotent(stack: LocalStack) -> None:
    before = {report.name: report.pid for report in stack.status()}
    stack.up()
    after = {report.name: report.pid for report in stack.status()}
    assert before == after


def test_up_recovers_after_a_crash(stack: LocalStack) -> None:
    pid = stack.livekit.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while stack.livekit.running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _states(stack)["livekit"] == "stopped"
    stack.up()
    assert _states(stack)["livekit"] == "running"
    assert stack.livekit.pid() != pid


def test_up_recovers_after_postgres_is_killed(stack: LocalStack) -> None:
    pid = stack.postgres.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    stack.up()
    assert stack.postgres.healthy()
    assert stack.postgres.pid() != pid


def test_status_and_logs_commands(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    assert stack_cli(["status"]) == 0
    out = capsys.readouterr().out
    assert "postgres" in out
    assert "running" in out
    assert stack_cli(["logs", "livekit", "-n", "5"]) == 0
    assert "livekit.log" in capsys.readouterr().out


@pytest.fixture
def postgres_scratch_layout(stack: LocalStack) -> Iterator[StackLayout]:
    # Under .local/ (not /tmp/pytest-*, mode 0700) so the postgres OS user can reach it.
    root = stack.layout.local_dir / "test-scratch" / f"pg-{os.getpid()}-{time.monotonic_ns()}"
    root.mkdir(parents=True)
    yield StackLayout(local_dir=root, cache_dir=stack.layout.cache_dir)
    shutil.rmtree(root, ignore_errors=True)


def test_half_initialised_data_folder_is_refused_and_kept(
    postgres_scratch_layout: StackLayout,
) -> None:
    data = postgres_scratch_layout.local_dir / "postgres"
    data.mkdir()
    (data / "precious.txt").write_text("user data")
    service = PostgresService(postgres_scratch_layout, port=1, password="pw")
    with pytest.raises(
        StackError, match=r"not empty but holds no complete cluster .* move it aside"
    ):
        service.prepare()
    assert (data / "precious.txt").read_text() == "user data"


def test_taken_port_is_reported_before_starting(postgres_scratch_layout: StackLayout) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        service = PostgresService(postgres_scratch_layout, port=port, password="pw")
        service.prepare()  # a real initdb into the scratch folder
        with pytest.raises(StackError, match=rf"port {port}/tcp .* set WORKBENCH_POSTGRES_PORT"):
            service.start()
    assert not service.running()


def test_hosted_mode_has_no_local_stack(settings: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.config import load_settings

    monkeypatch.setenv("WORKBENCH_DEPLOYMENT", "hosted")
    for name, value in {
        "SUPABASE_URL": "https://abc.supabase.co",
        "SUPABASE_ANON_KEY": "a",
        "SUPABASE_SERVICE_ROLE_KEY": "s",
        "DATABASE_URL": "postgresql://u:p@db.example.org/postgres?sslmode=require",
        "LIVEKIT_URL": "wss://x.livekit.cloud",
        "LIVEKIT_API_KEY": "k",
        "LIVEKIT_API_SECRET": "s",
        "STORAGE_URL": "s3://b/p",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StackError, match="WORKBENCH_DEPLOYMENT=hosted"):
        LocalStack(load_settings(_env_file=None))


def test_generated_secrets_are_private(stack: LocalStack) -> None:
    secrets_file: Path = stack.layout.local_dir / "secrets.json"
    assert secrets_file.stat().st_mode & 0o077 == 0
    for log in ("postgres", "mail", "auth", "livekit", "agent-cpu-small", "web"):
        assert (stack.layout.logs_dir / f"{log}.log").stat().st_mode & 0o077 == 0, log
    assert (stack.layout.run_dir / "livekit.yaml").stat().st_mode & 0o077 == 0


def test_an_agent_whose_models_cannot_load_is_never_ready(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The worker counts job processes that die before their warm-up, gives up, and `up` says why.

    (livekit-agents alone restarts them forever behind a 200 health check.)
    """
    broken = tmp_path / "broken-stack.yaml"
    broken.write_text(
        "name: broken\n"
        "stt: {name: missing, kind: stt, backend: faster-whisper, model: /nonexistent/whisper}\n"
        f"llm: {REPO_ROOT / 'configs/models/smollm2-135m-instruct-llamacpp.yaml'}\n"
        f"tts: {REPO_ROOT / 'configs/models/piper-joe-medium.yaml'}\n"
    )
    layout = StackLayout(local_dir=tmp_path / "local", cache_dir=stack.layout.cache_dir)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    agent = AgentService(layout, port=port, stack="broken", stack_file=broken)
    agent._binary = Path(sys.executable)  # prepare() would refuse the spec before the worker could
    try:
        with pytest.raises(
            StackError,
            match=r"agent-broken: models failed to load: a job process ended before its models loaded",
        ) as failure:
            agent.start()
        assert "stopped restarting job processes after 3" in str(failure.value)
        assert not agent.running()  # it gave up instead of looping
        assert agent.models_failure() is not None
        assert "models failed to load" in agent.status_detail()
    finally:
        agent.stop()


def test_services_connect_as_authenticator_not_the_owner(stack: LocalStack, admin_dsn: str) -> None:
    """The web app's pooled connections are `authenticator`'s, never the superuser's.

    (Supabase Auth's own password is checked in test_database: the superuser's
    password no longer opens `supabase_auth_admin`, and Auth still answers.)
    """
    base = stack.web.url.rstrip("/")
    with httpx.Client() as browser:
        browser.get(f"{base}/login")
        answer = browser.post(
            f"{base}/login",
            data={
                "_xsrf": browser.cookies["_xsrf"],
                "email": "nobody@example.org",
                "password": "wrong-1",
            },
        )
        assert answer.status_code == 401  # the login guard ran: the server's pool is open
    with psycopg.connect(admin_dsn) as conn:
        held = conn.execute(
            """select usename::text, application_name from pg_stat_activity
               where datname = 'postgres' and pid <> pg_backend_pid() and usename is not null"""
        ).fetchall()
    web = {user for user, app in held if app.startswith("voice-workbench-web")}
    assert web == {"authenticator"}, held


def test_the_reset_form_is_rate_limited_per_email(stack: LocalStack) -> None:
    """The web app counts reset requests before asking Auth (same answer for unknown addresses)."""
    base = stack.web.url.rstrip("/")
    email = f"nobody-{os.urandom(3).hex()}@example.org"  # no such account: limited all the same
    statuses = []
    with httpx.Client() as browser:
        browser.get(f"{base}/reset")
        for _ in range(4):
            answer = browser.post(
                f"{base}/reset", data={"_xsrf": browser.cookies["_xsrf"], "email": email}
            )
            statuses.append(answer.status_code)
    assert statuses == [200, 200, 200, 429]
    assert "Too many requests; try again in" in answer.text


def test_the_tls_proxy_serves_the_web_app_and_livekit_signalling_on_one_https_origin(
    stack: LocalStack, tmp_path: Path
) -> None:
    """`./dev up --tls HOST`'s proxy: nginx from Debian, a local CA, checked as a browser checks."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    layout = StackLayout(local_dir=tmp_path, cache_dir=stack.layout.cache_dir)
    for folder in (layout.logs_dir, layout.run_dir):
        folder.mkdir()
    tls = ensure_certificates(tmp_path / "tls", "localhost", addresses=["127.0.0.1"])
    assert tls.ca is not None
    proxy = TlsProxyService(
        layout,
        hostname="localhost",
        address="127.0.0.1",
        port=port,
        tls=tls,
        web_upstream=f"127.0.0.1:{stack.settings.panel_port}",
        livekit_upstream=f"127.0.0.1:{stack.settings.livekit_port}",
    )
    proxy.prepare()
    proxy.start()
    try:
        trusting = ssl.create_default_context(cafile=str(tls.ca))
        with httpx.Client(verify=trusting) as client:
            page = client.get(f"https://localhost:{port}/login")
            assert page.status_code == 200
            assert "Sign in" in page.text
            assert page.headers["strict-transport-security"].startswith("max-age=")
            # LiveKit's signalling path reaches LiveKit (which wants a token).
            signalling = client.get(f"https://localhost:{port}/rtc/validate")
            assert signalling.status_code == 401, signalling.text
        # Without the CA the certificate is not trusted: nothing is accepted blindly.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://localhost:{port}/login")
        # A client that offers only old ciphers (no forward secrecy, CBC) or old TLS is refused.
        for version, ciphers in (
            (ssl.TLSVersion.TLSv1_2, "AES128-SHA:AES256-SHA:AES128-GCM-SHA256"),
            (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA"),
        ):
            old = ssl.create_default_context(cafile=str(tls.ca))
            old.maximum_version = version
            old.set_ciphers(ciphers)
            with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", port)) as raw:
                old.wrap_socket(raw, server_hostname="localhost")
        # A client that connects and sends no request is not kept waiting on for ever.
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            trusting.wrap_socket(raw, server_hostname="localhost") as idle,
        ):
            idle.settimeout(CLIENT_HEADER_TIMEOUT_S + 10)
            started = time.monotonic()
            assert idle.recv(1) == b""  # closed by the proxy
            assert time.monotonic() - started < CLIENT_HEADER_TIMEOUT_S + 5
        assert f"trust {tls.ca}" in proxy.status_detail()
    finally:
        proxy.stop()
