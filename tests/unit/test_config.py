"""Settings: local defaults, hosted requirements, and errors that name the variable to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stack.instances import every_settings_variable
from workbench.config import SettingsError, load_settings

pytestmark = pytest.mark.unit

HOSTED = {
    "SUPABASE_URL": "https://abc.supabase.co",
    "SUPABASE_ANON_KEY": "anon",
    "SUPABASE_SERVICE_ROLE_KEY": "service",
    "DATABASE_URL": "postgresql://postgres:pw@db.abc.supabase.co:5432/postgres?sslmode=require",
    "LIVEKIT_URL": "wss://demo.livekit.cloud",
    "LIVEKIT_API_KEY": "key",
    "LIVEKIT_API_SECRET": "secret",
    "STORAGE_URL": "s3://bucket/prefix",
    "WORKBENCH_S3_ENDPOINT": "https://abc.supabase.co/storage/v1/s3",
    "WORKBENCH_S3_REGION": "eu-central-1",
    "WORKBENCH_S3_ACCESS_KEY_ID": "key-id",
    "WORKBENCH_S3_SECRET_ACCESS_KEY": "key-secret",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Isolate from the developer's environment (and the tests' own instance's) and .env file."""
    for name in every_settings_variable():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_LOCAL_DIR", str(tmp_path / "local"))
    monkeypatch.chdir(tmp_path)


def load(**overrides: object):  # type: ignore[no-untyped-def]
    return load_settings(_env_file=None, **overrides)


def test_local_defaults_point_at_loopback_and_read_generated_secrets(tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "secrets.json").write_text(
        json.dumps(
            {
                "jwt_secret": "s" * 64,
                "anon_key": "anon-jwt",
                "postgres_password": "pw",
                "authenticator_password": "app-pw",
                "livekit_api_key": "APIkey",
                "livekit_api_secret": "lksecret",
            }
        )
    )
    settings = load(postgres_port=6000)
    assert settings.is_local
    assert settings.auth_url == "http://127.0.0.1:9999"
    assert settings.livekit_url == "ws://127.0.0.1:7880"
    assert settings.livekit_http_url == "http://127.0.0.1:7880"
    # The app connects as `authenticator`; the owner's URL is for migrations only.
    assert settings.database_url is not None
    assert (
        settings.database_url.get_secret_value()
        == "postgresql://authenticator:app-pw@127.0.0.1:6000/postgres"
    )
    assert settings.database_admin_url is not None
    assert (
        settings.database_admin_url.get_secret_value()
        == "postgresql://postgres:pw@127.0.0.1:6000/postgres"
    )
    assert settings.supabase_anon_key is not None
    assert settings.supabase_anon_key.get_secret_value() == "anon-jwt"
    assert settings.storage_url == str(local / "storage")
    assert "lksecret" not in repr(settings)  # secrets never print


def test_explicit_values_win_over_generated_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "secrets.json").write_text(json.dumps({"livekit_api_key": "generated"}))
    monkeypatch.setenv("LIVEKIT_API_KEY", "mine")
    assert load().livekit_api_key == "mine"


def test_hosted_mode_lists_every_missing_variable() -> None:
    with pytest.raises(SettingsError) as excinfo:
        load(deployment="hosted", supabase_url="https://abc.supabase.co")
    message = str(excinfo.value)
    for name in (
        "SUPABASE_ANON_KEY",
        "DATABASE_URL",
        "LIVEKIT_URL",
        "LIVEKIT_API_SECRET",
        "STORAGE_URL",
    ):
        assert name in message
    assert "SUPABASE_URL," not in message  # given, so not listed


def test_hosted_mode_uses_the_auth_path_and_jwks(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in HOSTED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WORKBENCH_DEPLOYMENT", "hosted")
    settings = load()
    assert settings.auth_url == "https://abc.supabase.co/auth/v1"
    assert settings.jwks_url == "https://abc.supabase.co/auth/v1/.well-known/jwks.json"
    assert settings.livekit_http_url == "https://demo.livekit.cloud"


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("LIVEKIT_URL", "http://127.0.0.1:7880", "LIVEKIT_URL: must be a ws:// or wss:// URL"),
        ("SUPABASE_URL", "abc.supabase.co", "SUPABASE_URL: must be an http(s) URL"),
        (
            "SUPABASE_URL",
            "https://abc.supabase.co/auth/v1",
            "SUPABASE_URL: give the project URL without a path",
        ),
        (
            "DATABASE_URL",
            "mysql://x@y/z",
            "DATABASE_URL: must be a postgresql:// connection string",
        ),
        ("WORKBENCH_POSTGRES_PORT", "70000", "WORKBENCH_POSTGRES_PORT:"),
        ("WORKBENCH_POSTGRES_PORT", "five", "WORKBENCH_POSTGRES_PORT:"),
        ("WORKBENCH_DEPLOYMENT", "cloud", "WORKBENCH_DEPLOYMENT:"),
        ("WORKBENCH_AGENT_STACKS", "cpu-small;cpu-hf", "WORKBENCH_AGENT_STACKS:"),
        ("WORKBENCH_AGENT_STACKS", "../etc", "WORKBENCH_AGENT_STACKS:"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError, match="invalid settings") as excinfo:
        load()
    assert expected in str(excinfo.value)


def test_unreadable_secrets_file_says_how_to_fix(tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "secrets.json").write_text("{not json")
    with pytest.raises(SettingsError, match=r"secrets.json is unreadable .* run `./dev up`"):
        load()


def test_settings_are_frozen() -> None:
    settings = load()
    with pytest.raises(ValueError, match="frozen"):
        settings.livekit_port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("SUPABASE_URL", "http://abc.supabase.co", "SUPABASE_URL must be https://"),
        ("LIVEKIT_URL", "ws://demo.livekit.cloud", "LIVEKIT_URL must be wss://"),
        (
            "WORKBENCH_SITE_URL",
            "http://workbench.example.org",
            "WORKBENCH_SITE_URL must be https://",
        ),
        (
            "DATABASE_URL",
            "postgresql://u:p@db.example.org/postgres",
            "DATABASE_URL needs sslmode=require",
        ),
        (
            "DATABASE_URL",
            "postgresql://u:p@db.example.org/postgres?sslmode=prefer",
            "DATABASE_URL needs sslmode=require",
        ),
        ("WORKBENCH_S3_ENDPOINT", "http://abc.supabase.co/storage/v1/s3", "must be https://"),
    ],
)
def test_hosted_mode_refuses_clear_text_transports(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: str
) -> None:
    for name, setting in HOSTED.items():
        monkeypatch.setenv(name, setting)
    monkeypatch.setenv("WORKBENCH_DEPLOYMENT", "hosted")
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError, match=expected):
        load()


def test_s3_storage_takes_its_endpoint_region_and_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, setting in HOSTED.items():
        monkeypatch.setenv(name, setting)
    monkeypatch.setenv("WORKBENCH_DEPLOYMENT", "hosted")
    options = load().storage_options()
    assert options["endpoint_url"] == "https://abc.supabase.co/storage/v1/s3"
    assert options["client_kwargs"] == {"region_name": "eu-central-1"}
    assert (options["key"], options["secret"]) == ("key-id", "key-secret")
    assert options["config_kwargs"]["s3"]["addressing_style"] == "path"  # Supabase's style
    monkeypatch.delenv("WORKBENCH_S3_SECRET_ACCESS_KEY")  # half a key pair is not sent
    assert "key" not in load().storage_options()
    monkeypatch.setenv("STORAGE_URL", "/srv/workbench/objects")  # a folder needs none of them
    assert load().storage_options() == {}


def test_tls_mode_serves_pages_and_livekit_on_one_https_origin(tmp_path: Path) -> None:
    settings = load(local_dir=str(tmp_path), tls_host="lab.example.org", tls_port=8443)
    assert settings.public_url == "https://lab.example.org:8443"
    assert settings.browser_livekit_url == "wss://lab.example.org:8443"
    plain = load(local_dir=str(tmp_path))
    assert plain.public_url.startswith("http://127.0.0.1:")
    assert plain.browser_livekit_url == plain.livekit_url


def test_stacks_the_first_is_the_default_and_each_has_its_agent_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load().stack_names == ["cpu-small"]
    monkeypatch.setenv("WORKBENCH_AGENT_STACKS", " cpu-hf , cpu-small,cpu-hf")
    settings = load(agent_name="lab")
    assert settings.stack_names == ["cpu-hf", "cpu-small"]
    assert settings.default_stack == "cpu-hf"
    assert settings.agent_name_for("cpu-small") == "lab-cpu-small"


def test_the_deployments_old_name_still_works_and_says_its_new_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WORKBENCH_STACK meant the deployment; "stack" now means a model stack only."""
    monkeypatch.setenv("WORKBENCH_STACK", "hosted")
    with (
        pytest.warns(FutureWarning, match="WORKBENCH_STACK is now WORKBENCH_DEPLOYMENT"),
        pytest.raises(SettingsError, match="WORKBENCH_DEPLOYMENT=hosted needs"),
    ):
        load()
