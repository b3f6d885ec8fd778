"""A newcomer's first conversation in a real browser: register, sign in, talk, History, passwords.

Chromium's microphone plays a real recording to the agent.

Chromium will not use loopback for WebRTC, so the browser runs on a client
host (a network namespace of this test's own) and reaches, over a veth link,
a LiveKit server, an agent worker and the web server started here for the
test on the link's server address, behind the TLS mode's proxy (nginx) with a
certificate from the local CA: the browser trusts that CA (an NSS database in
its HOME, as a person would import it) and opens https://workbench.test, as a
researcher opens a lab server from a laptop; the microphone is granted because
the page is secure, and LiveKit's signalling runs over wss. The agent records
into the stack's database as always. The test waits for the user's transcript
and the agent's reply on the page, then for both turns in the database.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import psutil
import psycopg
import pytest
import soundfile as sf
import yaml
from playwright.sync_api import Page, expect, sync_playwright

from stack.gobuild import LIVEKIT_SERVER, ensure_go_binary
from stack.livekit_server import livekit_config
from stack.mailcatcher import links_in, read_messages
from stack.services import LocalStack
from stack.tls import ensure_certificates
from stack.tls_proxy import ensure_nginx, nginx_command, nginx_config
from tests.support.netns import Hosts, client_host, namespaces_unavailable, wrapper_in_namespace
from tests.support.ports import free_port
from tests.support.speech import pocketsphinx_utterances
from tests.ui.conftest import ARTIFACTS, CHROMIUM
from workbench.audio import read_audio
from workbench.config import REPO_ROOT, Settings
from workbench.db.connection import admin_database_url

pytestmark = [
    pytest.mark.ui,
    pytest.mark.skipif(namespaces_unavailable() is not None, reason=str(namespaces_unavailable())),
]

KEY, SECRET = "browserkey", "browser-secret-0123456789abcdefghijklmnopqrstuv"
HOSTNAME = "workbench.test"  # resolved by the browser to the server host's address


def _wait(check, what: str, log: Path, process: subprocess.Popen[bytes], timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        assert process.poll() is None, f"{what} exited:\n{log.read_text(errors='replace')[-3000:]}"
        assert time.monotonic() < deadline, (
            f"{what} not ready:\n{log.read_text(errors='replace')[-3000:]}"
        )
        time.sleep(0.3)


class Servers:
    """LiveKit, the agent and the web server on the link's server address; stopped by pid."""

    def __init__(self, hosts: Hosts, settings: Settings, workdir: Path) -> None:
        self.hosts = hosts
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []
        ip = hosts.server_ip
        self.livekit_port = free_port(ip)
        self.web_port = free_port(ip)
        self.tls_port = free_port(ip)
        self.agent_port = free_port("127.0.0.1")
        self.web_url = f"https://{HOSTNAME}:{self.tls_port}"
        self.tls = ensure_certificates(workdir / "tls", HOSTNAME, addresses=[ip])
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "LIVEKIT_URL": f"ws://{ip}:{self.livekit_port}",
            "LIVEKIT_API_KEY": KEY,
            "LIVEKIT_API_SECRET": SECRET,
            "WORKBENCH_AGENT_PORT": str(self.agent_port),
            "WORKBENCH_PANEL_PORT": str(self.web_port),
            "WORKBENCH_PANEL_METRICS_PORT": str(free_port("127.0.0.1")),
            "WORKBENCH_PANEL_ADDRESS": ip,
            # The TLS mode: pages and LiveKit's signalling on https/wss://workbench.test.
            "WORKBENCH_TLS_HOST": HOSTNAME,
            "WORKBENCH_TLS_PORT": str(self.tls_port),
            "WORKBENCH_TRUSTED_PROXIES": ip,  # the proxy reaches the web app from here
            "HF_HUB_OFFLINE": "1",
        }
        self.nginx = ensure_nginx(settings.cache_dir)
        self.binary = ensure_go_binary(
            LIVEKIT_SERVER, cache_dir=settings.cache_dir, log_path=workdir / "build.log"
        ).path

    def _start(self, name: str, argv: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=REPO_ROOT
            )
        self.processes.append(process)
        return process, log

    def start(self) -> None:
        ip = self.hosts.server_ip
        config = livekit_config(
            bind_ip=ip,
            port=self.livekit_port,
            tcp_port=free_port(ip),
            udp_port=free_port(ip, socket.SOCK_DGRAM),
            api_key=KEY,
            api_secret=SECRET,
            ip_cidr=f"{ip}/32",
        )
        (self.workdir / "livekit.yaml").write_text(yaml.safe_dump(config))
        livekit, lk_log = self._start(
            "livekit", [str(self.binary), "--config", str(self.workdir / "livekit.yaml")]
        )
        _wait(
            lambda: "starting LiveKit server" in lk_log.read_text(errors="replace"),
            "LiveKit",
            lk_log,
            livekit,
            30,
        )
        config = nginx_config(
            listen=f"{ip}:{self.tls_port}",
            server_name=HOSTNAME,
            tls=self.tls,
            web_upstream=f"{ip}:{self.web_port}",
            livekit_upstream=f"{ip}:{self.livekit_port}",
            state_dir=self.workdir,
        )
        proxy, proxy_log = self._start(
            "tls-proxy", nginx_command(self.nginx, config, state_dir=self.workdir)
        )
        self.start_agent(wait=False)
        web, web_log = self._start("web", [sys.executable, "-m", "dashboards"])
        self.wait_for_agent()
        _wait(
            lambda: _answers(f"http://{ip}:{self.web_port}/liveness"),
            "web server",
            web_log,
            web,
            120,
        )
        # Through the proxy, checked against the local CA (the certificate names the IP too).
        _wait(
            lambda: _answers(f"https://{ip}:{self.tls_port}/liveness", ca=self.tls.ca),
            "TLS proxy",
            proxy_log,
            proxy,
            30,
        )

    def start_agent(self, *, wait: bool = True) -> None:
        """The agent worker (a fresh one after `kill_agent`)."""
        self.agent, self.agent_log = self._start("agent", [sys.executable, "-m", "agent"])
        if wait:
            self.wait_for_agent()

    def wait_for_agent(self) -> None:
        _wait(  # its health endpoint: models loaded and registered with LiveKit
            lambda: _answers(f"http://127.0.0.1:{self.agent_port}/models"),
            "agent",
            self.agent_log,
            self.agent,
            240,
        )

    def kill_agent(self) -> None:
        """The agent's machine dies: its worker and job processes, at once (SIGKILL)."""
        worker = psutil.Process(self.agent.pid)
        for process in [*worker.children(recursive=True), worker]:
            process.kill()
        self.agent.wait(timeout=20)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answers(url: str, ca: Path | None = None) -> bool:
    verify = ssl.create_default_context(cafile=str(ca)) if ca else True
    try:
        return httpx.get(url, timeout=2, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def servers(web_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with client_host() as hosts:
        running = Servers(hosts, web_settings, tmp_path_factory.mktemp("browser-call"))
        try:
            running.start()
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recording padded with silence, as Chromium's fake microphone plays it in a loop."""
    utterance = next(u for u in pocketsphinx_utterances() if u.path.stem.endswith("0880"))
    speech = read_audio(utterance.path)
    silence = np.zeros(16_000 * 2, dtype=np.float32)
    path = tmp_path_factory.mktemp("mic") / "question.wav"
    sf.write(
        str(path),
        np.concatenate([silence, speech, silence, silence, silence]),
        16_000,
        subtype="PCM_16",
    )
    return path


def _home_trusting(ca: Path, home: Path) -> Path:
    """A HOME whose NSS database (Chromium's trust store on Linux) trusts `ca` for websites."""
    nssdb = home / ".pki" / "nssdb"
    if nssdb.exists():  # made for an earlier browser of this module
        return home
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True)
    subprocess.run(
        [
            "certutil",
            "-A",
            "-d",
            f"sql:{nssdb}",
            "-n",
            "Voice Workbench local CA",
            "-t",
            "C,,",
            "-i",
            str(ca),
        ],
        check=True,
    )
    return home


def _launch(playwright: Any, servers: Servers, microphone: Path) -> Any:
    wrapper = wrapper_in_namespace(servers.hosts.client_ns, CHROMIUM, servers.workdir)
    assert servers.tls.ca is not None
    home = _home_trusting(servers.tls.ca, servers.workdir / "browser-home")
    return playwright.chromium.launch(
        executable_path=str(wrapper),
        env={**os.environ, "HOME": str(home)},
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}",
            "--autoplay-policy=no-user-gesture-required",
            # The name people would have in DNS; the certificate is checked as usual.
            f"--host-resolver-rules=MAP {HOSTNAME} {servers.hosts.server_ip}",
        ],
    )


def _register(page: Page, web_url: str, email: str, password: str) -> None:
    page.goto(f"{web_url}/register")
    page.get_by_label("Display name").fill("Newcomer")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password (8 characters or more)").fill(password)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("Your account is ready: sign in.")


def _sign_in(page: Page, web_url: str, email: str, password: str) -> None:
    page.goto(f"{web_url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _sign_out(page: Page, web_url: str) -> None:
    page.goto(f"{web_url}/logout")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login"))


def _talk(page: Page, web_url: str) -> None:
    """Start a conversation, hear the agent answer what the microphone said, stop."""
    page.goto(f"{web_url}/conversation")
    page.get_by_role("button", name="Start conversation").click()
    expect(page.get_by_text("Connection: connected")).to_be_visible(timeout=60_000)
    # The user's words ("he was not an ill disposed young man"), transcribed by
    # the agent, then the agent's reply.
    expect(page.get_by_text(re.compile(r"You:.*young man", re.I)).first).to_be_visible(
        timeout=120_000
    )
    # The greeting, then an answer to what the user said.
    agent_lines = page.get_by_text(re.compile(r"Agent:\s*\S+"))
    deadline = time.monotonic() + 120
    while agent_lines.count() < 2:
        assert time.monotonic() < deadline, "the agent did not answer on the page"
        page.wait_for_timeout(500)
    expect(page.get_by_text(re.compile(r"RTT \d+ ms"))).to_be_visible(timeout=30_000)
    # The page measured voice to voice from the audio it played: the answer was heard.
    expect(page.get_by_text(re.compile(r"voice to voice \d+\.\d\d s"))).to_be_visible(
        timeout=60_000
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "conversation.png"), full_page=True)
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text("Connection: disconnected")).to_be_visible(timeout=30_000)


def _stored_turns(settings: Settings, user_id: str) -> list[tuple[Any, ...]]:
    """(role, idx, v2v_audio_s, audio_path) of the user's turns, once both sides and the heard delay are in."""
    deadline = time.monotonic() + 60
    rows: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline:
        with psycopg.connect(admin_database_url(settings)) as conn:
            rows = conn.execute(
                """select t.role, t.idx, t.v2v_audio_s, t.audio_path from public.turns t
                   join public.conversations c on c.id = t.conversation_id
                   where c.owner_id = %s order by c.started_at, t.idx""",
                [user_id],
            ).fetchall()
        heard = [r for r in rows if r[0] == "agent" and r[1] > 0 and r[2] is not None]
        if {"user", "agent"} <= {r[0] for r in rows} and heard:
            break
        time.sleep(1)
    return rows


def test_a_newcomers_first_conversation(
    servers: Servers, microphone: Path, web_settings: Settings
) -> None:
    """The journey of the README, through the real forms and Supabase Auth (no session shortcut).

    Register, sign in, talk, hear the answer, find the turns in History, change the
    password, sign out, and reset the password through the mailed link.
    """
    web = servers.web_url
    email = f"newcomer-{secrets.token_hex(4)}@example.org"
    first, second, third = (secrets.token_urlsafe(12) for _ in range(3))
    mail_folder = LocalStack(web_settings).mail.folder
    outside: list[str] = []
    allowed = (servers.web_url, f"wss://{HOSTNAME}:{servers.tls_port}", "data:", "blob:")
    with sync_playwright() as playwright:
        browser = _launch(playwright, servers, microphone)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("request", lambda r: None if r.url.startswith(allowed) else outside.append(r.url))
        try:
            _register(page, web, email, first)
            _sign_in(page, web, email, first)
            expect(page).not_to_have_url(re.compile(r"/login"))
            (session,) = [c for c in context.cookies() if c["name"] == "vwb_session"]
            assert session["secure"], "the session cookie must be Secure behind TLS"
            assert session["httpOnly"]
            with psycopg.connect(admin_database_url(web_settings)) as conn:
                (user_id,) = conn.execute(
                    "select id::text from auth.users where email = %s", [email]
                ).fetchone() or (None,)
            assert user_id is not None, "registration made no Supabase Auth user"

            _talk(page, web)
            rows = _stored_turns(web_settings, user_id)
            assert {"user", "agent"} <= {row[0] for row in rows}, rows
            heard = [row[2] for row in rows if row[0] == "agent" and row[1] > 0 and row[2]]
            assert heard, "no agent turn got the browser-measured voice-to-voice"
            assert all(0.1 < v < 30 for v in heard), heard
            with psycopg.connect(admin_database_url(web_settings)) as conn:
                (samples, rtt) = conn.execute(
                    """select count(*), max(s.rtt_ms) from public.connection_samples s
                       join public.conversations c on c.id = s.conversation_id
                       where c.owner_id = %s""",
                    [user_id],
                ).fetchone() or (0, None)
            # The page stored its connection statistics against the conversation.
            assert samples > 0, "no connection sample stored"
            assert rtt is None or 0 <= rtt < 5000, rtt

            # History: both turns, their latency columns, and their audio, playable.
            page.goto(f"{web}/history")
            picker = page.get_by_label("Conversation")
            expect(picker).to_be_visible(timeout=30_000)
            picker.select_option(index=1)  # the newcomer's one conversation
            expect(page.get_by_text(re.compile(r"young man", re.I)).first).to_be_visible(
                timeout=30_000
            )
            expect(page.get_by_text("v2v_audio_s").first).to_be_visible()
            expect(page.get_by_text(re.compile(r"Turn \d+ \(user\)")).first).to_be_visible()
            expect(page.get_by_text(re.compile(r"Turn \d+ \(agent\)")).first).to_be_visible()
            src = page.locator("audio").first.get_attribute("src")
            assert src is not None
            # Fetched by the page (the browser's TLS and name resolution), as the player does.
            status, head = page.evaluate(
                """async src => {
                    const answer = await fetch(src);
                    const bytes = new Uint8Array(await answer.arrayBuffer());
                    return [answer.status, String.fromCharCode(...bytes.slice(0, 4))];
                }""",
                src,
            )
            assert (status, head) == (200, "RIFF")
            page.screenshot(path=str(ARTIFACTS / "journey-history.png"), full_page=True)

            # Change the password on the profile page, sign out, and only the new one works.
            page.goto(f"{web}/profile")
            current = page.get_by_label("Current password")
            expect(current).to_be_visible(timeout=30_000)
            new_password = page.get_by_label("New password")
            current.fill("not-my-password")
            current.press("Enter")
            new_password.fill(second)
            new_password.press("Enter")
            page.get_by_role("button", name="Change password").click()
            expect(page.get_by_text("the current password is wrong")).to_be_visible(timeout=15_000)
            current.fill(first)
            current.press("Enter")
            page.get_by_role("button", name="Change password").click()
            expect(page.get_by_text("Password changed.")).to_be_visible(timeout=15_000)
            _sign_out(page, web)
            with psycopg.connect(admin_database_url(web_settings)) as conn:
                live = conn.execute(
                    "select count(*) from auth.refresh_tokens where user_id = %s and not revoked",
                    [user_id],
                ).fetchone()
            assert live == (0,), "sign-out left a refresh token alive at Supabase Auth"
            _sign_in(page, web, email, first)
            expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")
            _sign_in(page, web, email, second)
            expect(page).not_to_have_url(re.compile(r"/login"))
            _sign_out(page, web)

            # Forgot it after all: the mailed link leads to our reset page.
            page.goto(f"{web}/reset")
            page.get_by_label("Email").fill(email)
            page.get_by_role("button", name="Send link").click()
            expect(
                page.get_by_text("If that account exists, a reset link is on its way.")
            ).to_be_visible()
            deadline = time.monotonic() + 30
            while not (messages := read_messages(mail_folder, to=email)):
                assert time.monotonic() < deadline, "no recovery mail arrived"
                time.sleep(0.3)
            (link,) = links_in(messages[-1])
            parts = urlsplit(link)
            assert parts.path == "/reset/complete"
            assert "token_hash=" in parts.query
            # The link names the stack's site URL (127.0.0.1); this browser lives on the
            # test host, so it opens the same path on the test's web server.
            page.goto(f"{web}{parts.path}?{parts.query}")
            page.get_by_label("New password (8 characters or more)").fill(third)
            page.get_by_role("button", name="Set password").click()
            expect(page).not_to_have_url(re.compile(r"/reset|/login"), timeout=15_000)
            _sign_out(page, web)
            _sign_in(page, web, email, second)
            expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")
            _sign_in(page, web, email, third)
            expect(page).not_to_have_url(re.compile(r"/login"))
        finally:
            browser.close()
    assert outside == [], f"requests left the test hosts: {outside}"


def test_devices_mute_and_an_agent_whose_worker_dies(
    servers: Servers, microphone: Path, web_settings: Settings
) -> None:
    """The browser's microphones are listed and one is chosen mid-call; mute takes the
    microphone off; an agent whose worker dies is shown as gone, not left as silence; its
    conversation is closed as interrupted with its turns kept; a new worker takes the next.
    """
    web = servers.web_url
    email, password = f"devices-{secrets.token_hex(4)}@example.org", secrets.token_urlsafe(12)
    with sync_playwright() as playwright:
        browser = _launch(playwright, servers, microphone)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        try:
            _register(page, web, email, password)
            _sign_in(page, web, email, password)
            expect(page).not_to_have_url(re.compile(r"/login"))
            page.goto(f"{web}/conversation")
            page.get_by_role("button", name="Start conversation").click()
            expect(page.get_by_text("Connection: connected")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Microphone: on")).to_be_visible(timeout=30_000)
            expect(
                page.get_by_text(re.compile(r"Agent: (listening|thinking|speaking)"))
            ).to_be_visible(timeout=60_000)
            # Chromium's fake capture devices, by name once the microphone is allowed.
            picker = page.get_by_label("Microphone", exact=True)
            fakes = picker.locator("option", has_text="Fake")
            expect(fakes.first).to_be_attached(timeout=30_000)
            picker.select_option(label=fakes.last.inner_text())
            page.wait_for_timeout(1000)
            expect(page.get_by_text("Could not switch")).to_have_count(0)
            expect(page.get_by_text("Connection: connected")).to_be_visible()

            mute = page.get_by_role("button", name="Mute microphone")
            mute.click()
            expect(page.get_by_text("Microphone: muted")).to_be_visible(timeout=15_000)
            mute.click()
            expect(page.get_by_text("Microphone: on")).to_be_visible(timeout=15_000)

            # Mid-conversation: the greeting and the user's question are recorded.
            completed = _turns_stored(web_settings, email, at_least=2)
            servers.kill_agent()
            expect(page.get_by_text("The agent left the conversation")).to_be_visible(
                timeout=90_000
            )
            expect(page.get_by_text("Agent: left the conversation")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "conversation-agent-gone.png"), full_page=True)
            page.get_by_role("button", name="Stop").click()
            expect(page.get_by_text("Connection: disconnected")).to_be_visible(timeout=30_000)

            # The dead job's journal is stored by a worker that lives (the stack's, which
            # recovers journals every 30 s): closed as interrupted, its turns kept.
            status, turns = _until_interrupted(web_settings, email)
            assert status == "interrupted"
            assert turns >= completed  # every turn completed before the crash
            # A new worker takes the next conversation.
            servers.start_agent()
            page.get_by_role("button", name="Start conversation").click()
            expect(
                page.get_by_text(re.compile(r"Agent: (listening|thinking|speaking)"))
            ).to_be_visible(timeout=90_000)
            page.get_by_role("button", name="Stop").click()
        finally:
            browser.close()


def _first_conversation(settings: Settings, email: str) -> tuple[str, int] | None:
    """The status and turn count of `email`'s first conversation, if it has one."""
    with psycopg.connect(admin_database_url(settings)) as conn:
        row = conn.execute(
            """select c.status, (select count(*) from public.turns t where t.conversation_id = c.id)
               from public.conversations c join auth.users u on u.id = c.owner_id
               where u.email = %s order by c.started_at limit 1""",
            [email],
        ).fetchone()
    return (str(row[0]), int(row[1])) if row else None


def _turns_stored(settings: Settings, email: str, *, at_least: int) -> int:
    deadline = time.monotonic() + 90
    while (found := _first_conversation(settings, email)) is None or found[1] < at_least:
        assert time.monotonic() < deadline, f"fewer than {at_least} turns stored: {found}"
        time.sleep(1)
    return found[1]


def _until_interrupted(settings: Settings, email: str) -> tuple[str, int]:
    """The first conversation's status and turn count once it is no longer active."""
    deadline = time.monotonic() + 120
    while (found := _first_conversation(settings, email)) is None or found[0] == "active":
        assert time.monotonic() < deadline, f"the conversation was never closed: {found}"
        time.sleep(2)
    return found
