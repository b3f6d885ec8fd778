"""A real WebRTC media path: one client publishes audio, another receives it through LiveKit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from stack.gobuild import LIVEKIT_SERVER, ensure_go_binary
from stack.livekit_server import livekit_config
from stack.services import LocalStack
from tests.support.media_probe import TONE_HZ, probe
from tests.support.netns import namespaces_unavailable, two_hosts
from workbench.config import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _assert_tone_arrived(result: dict[str, object], seconds: float) -> None:
    # Frames arrive for (nearly) the whole window, carry signal, and the
    # signal is the published tone, not noise or silence.
    assert float(result["received_s"]) >= 0.8 * seconds  # type: ignore[arg-type]
    assert int(result["frames_with_signal"]) >= 0.5 * int(result["frames"])  # type: ignore[call-overload]
    assert abs(float(result["dominant_hz"]) - TONE_HZ) <= 20  # type: ignore[arg-type]


async def test_audio_flows_through_the_stacks_livekit_on_loopback(
    stack: LocalStack, settings: Settings
) -> None:
    assert settings.livekit_url is not None
    assert settings.livekit_api_key is not None
    assert settings.livekit_api_secret is not None
    result = await probe(
        settings.livekit_url,
        settings.livekit_api_key,
        settings.livekit_api_secret.get_secret_value(),
        room_name=f"probe-{time.monotonic_ns()}",
        seconds=2.0,
    )
    _assert_tone_arrived(result, 2.0)


@pytest.mark.skipif(namespaces_unavailable() is not None, reason=str(namespaces_unavailable()))
def test_audio_flows_between_hosts_in_a_namespace_of_our_own(
    stack: LocalStack, tmp_path: Path
) -> None:
    binary = ensure_go_binary(
        LIVEKIT_SERVER, cache_dir=stack.layout.cache_dir, log_path=tmp_path / "build.log"
    ).path
    key, secret = "nskey", "ns-secret-0123456789abcdefghijklmnopqrstuvwxyz"
    with two_hosts() as ns:
        config = livekit_config(
            bind_ip=ns.server_ip,
            port=7880,
            tcp_port=7881,
            udp_port=7882,
            api_key=key,
            api_secret=secret,
            ip_cidr=ns.cidr,
        )
        config_path = tmp_path / "livekit.yaml"
        config_path.write_text(yaml.safe_dump(config))
        log_path = tmp_path / "livekit.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                ns.on_server(str(binary), "--config", str(config_path)),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 30
            while "starting LiveKit server" not in log_path.read_text():
                assert server.poll() is None, log_path.read_text()[-2000:]
                assert time.monotonic() < deadline, "LiveKit did not start in the namespace"
                time.sleep(0.2)
            completed = subprocess.run(
                ns.on_client(
                    sys.executable,
                    str(REPO / "tests" / "support" / "media_probe.py"),
                    "--url",
                    f"ws://{ns.server_ip}:7880",
                    "--key",
                    key,
                    "--secret",
                    secret,
                    "--seconds",
                    "2",
                ),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            server.terminate()
            server.wait(timeout=15)
    assert completed.returncode == 0, completed.stderr[-3000:]
    _assert_tone_arrived(json.loads(completed.stdout.strip().splitlines()[-1]), 2.0)
