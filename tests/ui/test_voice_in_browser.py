"""A real voice conversation in the browser: Chromium's microphone (a recording) talks to the agent.

Chromium will not use loopback for WebRTC, so the browser runs on a client
host (a network namespace of this test's own) and reaches, over a veth link,
a LiveKit server, an agent worker and the web server started here for the
test on the link's server address. The agent records into the stack's
database as always. The test waits for the user's transcript and the agent's
reply on the page, then for both turns in the database.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
import soundfile as sf
import yaml
from playwright.sync_api import expect, sync_playwright

from tests.support.netns import Hosts, client_host, namespaces_unavailable, wrapper_in_namespace
from tests.support.personas import Persona
from tests.support.speech import pocketsphinx_utterances
from tests.support.web import run_async, signed_in_cookie
from tests.ui.conftest import ARTIFACTS, CHROMIUM
from workbench.audio import read_audio
from workbench.auth.web_sessions import COOKIE_NAME
from workbench.config import REPO_ROOT, Settings
from workbench.db.connection import database_url
from workbench.stack.gobuild import LIVEKIT_SERVER, ensure_go_binary
from workbench.stack.livekit_server import livekit_config

pytestmark = [
    pytest.mark.ui,
    pytest.mark.skipif(namespaces_unavailable() is not None, reason=str(namespaces_unavailable())),
]

KEY, SECRET = "browserkey", "browser-secret-0123456789abcdefghijklmnopqrstuv"


def _free_port(ip: str, kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((ip, 0))
        return int(probe.getsockname()[1])


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
        self.livekit_port = _free_port(ip)
        self.web_port = _free_port(ip)
        self.web_url = f"http://{ip}:{self.web_port}"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "LIVEKIT_URL": f"ws://{ip}:{self.livekit_port}",
            "LIVEKIT_API_KEY": KEY,
            "LIVEKIT_API_SECRET": SECRET,
            "WORKBENCH_AGENT_PORT": str(_free_port("127.0.0.1")),
            "WORKBENCH_PANEL_PORT": str(self.web_port),
            "WORKBENCH_PANEL_ADDRESS": ip,
            "HF_HUB_OFFLINE": "1",
        }
        self.binary = ensure_go_binary(
            LIVEKIT_SERVER, cache_dir=settings.cache_dir, log_path=workdir / "build.log"
        )

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
            tcp_port=_free_port(ip),
            udp_port=_free_port(ip, socket.SOCK_DGRAM),
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
        agent, agent_log = self._start("agent", [sys.executable, "-m", "agent"])
        web, web_log = self._start("web", [sys.executable, "-m", "dashboards"])
        _wait(
            lambda: "registered worker" in agent_log.read_text(errors="replace"),
            "agent",
            agent_log,
            agent,
            240,
        )
        _wait(lambda: _answers(f"{self.web_url}/liveness"), "web server", web_log, web, 120)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
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


def test_talking_to_the_agent_from_the_browser(
    servers: Servers, microphone: Path, people: dict[str, Persona], web_settings: Settings
) -> None:
    user = people["user"]
    assert user.id is not None
    assert user.claims.email is not None
    assert web_settings.supabase_jwt_secret is not None
    cookie = run_async(
        signed_in_cookie(
            database_url(web_settings),
            web_settings.supabase_jwt_secret.get_secret_value(),
            user_id=user.id,
            email=user.claims.email,
        )
    )
    wrapper = wrapper_in_namespace(servers.hosts.client_ns, CHROMIUM, servers.workdir)
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(wrapper),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone}",
                "--autoplay-policy=no-user-gesture-required",
                # The test host is plain http on a private address; browsers grant the
                # microphone only to secure origins (https or localhost) otherwise.
                f"--unsafely-treat-insecure-origin-as-secure={servers.web_url}",
            ],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": COOKIE_NAME, "value": cookie, "url": servers.web_url}])
        page = context.new_page()
        allowed = (
            f"http://{servers.hosts.server_ip}",
            f"ws://{servers.hosts.server_ip}",
            "data:",
            "blob:",
        )
        page.on("request", lambda r: None if r.url.startswith(allowed) else outside.append(r.url))
        try:
            page.goto(f"{servers.web_url}/conversation")
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
            # The page measured voice to voice from the audio itself for an answer.
            expect(page.get_by_text(re.compile(r"voice to voice \d+\.\d\d s"))).to_be_visible(
                timeout=60_000
            )
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "conversation.png"), full_page=True)
            page.get_by_role("button", name="Stop").click()
            expect(page.get_by_text("Connection: disconnected")).to_be_visible(timeout=30_000)
        finally:
            browser.close()
    assert outside == [], f"requests left the test hosts: {outside}"

    deadline = time.monotonic() + 60
    roles: list[str] = []
    heard: list[float] = []
    while time.monotonic() < deadline:
        with psycopg.connect(database_url(web_settings)) as conn:
            rows = conn.execute(
                """select t.role, t.idx, t.v2v_audio_s from public.turns t
                   join public.conversations c on c.id = t.conversation_id
                   where c.owner_id = %s order by c.started_at, t.idx""",
                [user.id],
            ).fetchall()
            roles = [row[0] for row in rows]
            heard = [
                row[2] for row in rows if row[0] == "agent" and row[1] > 0 and row[2] is not None
            ]
        if "user" in roles and "agent" in roles and heard:
            break
        time.sleep(1)
    assert "user" in roles
    assert "agent" in roles
    # Voice to voice as the browser heard it, stored on an answering agent turn (not the greeting).
    assert heard, "no agent turn got the browser-measured voice-to-voice"
    assert all(0.1 < v < 30 for v in heard), heard
