"""The tests' own stack instance shares nothing with the person's but the caches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stack.instances import (
    TEST_DATA_DIR,
    TEST_LOCAL_DIR,
    environment_for_tests,
    is_test_instance,
    main,
    ports_for_tests,
)
from workbench.config import REPO_ROOT, Settings, load_settings

pytestmark = pytest.mark.unit

# What one instance may bind beyond its named ports: agent workers count up from the
# agent port (16 at most), LiveKit nodes take the first node's ports + 10 per node (8).
WORKERS, NODES = 16, 8


def _bound(ports: dict[str, int]) -> set[int]:
    taken = [*ports.values()]
    taken += [ports["WORKBENCH_AGENT_PORT"] + i for i in range(1, WORKERS)]
    for name in ("LIVEKIT_PORT", "LIVEKIT_TCP_PORT", "LIVEKIT_UDP_PORT"):
        taken += [ports[f"WORKBENCH_{name}"] + 10 * n for n in range(1, NODES)]
    taken += [ports["WORKBENCH_LIVEKIT_METRICS_PORT"] + n for n in range(1, NODES)]
    assert len(set(taken)) == len(taken), "one instance's own ports meet"
    return set(taken)


def test_no_port_of_the_tests_instance_meets_one_of_the_persons() -> None:
    person = {
        name: int(Settings.model_fields[field].default)
        for field, name in (
            (f, str(Settings.model_fields[f].validation_alias.choices[0]))  # type: ignore[union-attr]
            for f in Settings.model_fields
            if f.endswith("_port")
        )
    }
    ours = ports_for_tests()
    assert set(ours) == set(person)  # every port moves, none is forgotten
    assert not _bound(person) & _bound(ours)
    assert all(1024 < port < 65536 for port in _bound(ours))


def test_the_persons_services_and_env_file_never_reach_the_tests() -> None:
    person = {
        "DATABASE_URL": "postgresql://me@db.example.org/prod?sslmode=require",
        "SUPABASE_URL": "https://project.supabase.co",
        "LIVEKIT_URL": "wss://lab.livekit.cloud",
        "WORKBENCH_STACK": "hosted",
        "WORKBENCH_AGENT_STACKS": "gpu-large",
        "WORKBENCH_AGENT_BLOCKLIST": "mine",
        "WORKBENCH_LOCAL_DIR": "/srv/workbench",
        "WORKBENCH_CACHE_DIR": "/cache",
        "PATH": "/usr/bin",
    }
    env = environment_for_tests(person)
    for name in (
        "DATABASE_URL",
        "SUPABASE_URL",
        "LIVEKIT_URL",
        "WORKBENCH_AGENT_STACKS",
        "WORKBENCH_AGENT_BLOCKLIST",
    ):
        assert name not in env
    assert env["WORKBENCH_DEPLOYMENT"] == "local"
    assert "WORKBENCH_STACK" not in env  # the old name of the same setting
    assert env["WORKBENCH_LOCAL_DIR"] == str(TEST_LOCAL_DIR)
    assert env["WORKBENCH_DATA_DIR"] == str(TEST_DATA_DIR)
    assert env["WORKBENCH_ENV_FILE"] == ""  # no .env at all
    assert env["WORKBENCH_CACHE_DIR"] == "/cache"  # slow artefacts are shared
    assert env["PATH"] == "/usr/bin"


def test_settings_in_the_tests_environment_point_at_the_tests_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in environment_for_tests({}).items():
        monkeypatch.setenv(name, value)
    settings = load_settings(_env_file=None)
    assert is_test_instance(settings)
    assert settings.panel_port == 5006 + 2000
    assert settings.livekit_url == f"ws://127.0.0.1:{7880 + 2000}"
    assert not is_test_instance(load_settings(_env_file=None, local_dir=REPO_ROOT / ".local"))


def test_the_shell_lines_unset_the_persons_services(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://me@db.example.org/prod")
    monkeypatch.setenv("WORKBENCH_LOCAL_DIR", "/srv/it's mine")
    assert main(["test-env"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "unset DATABASE_URL" in lines
    assert f"export WORKBENCH_LOCAL_DIR={TEST_LOCAL_DIR}" in lines
    assert main(["up"]) == 2


def test_benches_that_make_accounts_refuse_the_persons_stack() -> None:
    from stack.instances import require_test_instance

    person = load_settings(_env_file=None, local_dir=Path("/srv/workbench"))
    with pytest.raises(SystemExit, match=re.escape("./dev bench bench/soak.py")):
        require_test_instance(person, "bench/soak.py")
