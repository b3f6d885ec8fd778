"""Settings from the environment and `.env`, one cached accessor.

The same settings select the local embedded deployment (`WORKBENCH_DEPLOYMENT=local`,
the default: every service on loopback, secrets generated into `.local/`) or
hosted services (`WORKBENCH_DEPLOYMENT=hosted`: a Supabase project and LiveKit
Cloud or a self-hosted LiveKit cluster). Nothing here builds a client or
opens a connection; callers do that from the values.
"""

from __future__ import annotations

import json
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
# WORKBENCH_DEPLOYMENT's old name, from when "stack" meant the deployment too.
DEPRECATED_DEPLOYMENT_VARIABLE = "WORKBENCH_STACK"
LOCAL_SECRETS_FILE = "secrets.json"


def default_cache_dir() -> Path:
    """Per-user cache for slow-to-make artefacts (Go builds, venvs, models)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voice-workbench"


def env_file_path() -> Path | None:
    """The `.env` file settings are read from (WORKBENCH_ENV_FILE; empty: none)."""
    # WORKBENCH_ENV_FILE names another file, or none when empty: the tests' own stack
    # instance reads none of the person's `.env` (stack/instances.py).
    name = os.environ.get("WORKBENCH_ENV_FILE")
    if name is None:
        return REPO_ROOT / ".env"
    return Path(name) if name else None


def _env(*names: str) -> AliasChoices:
    # The first name is the environment variable; the field name is accepted
    # too so tests and code can construct Settings(deployment="hosted", ...).
    return AliasChoices(*names)


class SettingsError(ValueError):
    """Settings are invalid; the message names each variable and the fix."""


def _insecure_transports(settings: Settings) -> list[str]:
    """What a hosted deployment would send in clear, each with the fix."""
    problems = []
    if settings.supabase_url and not settings.supabase_url.startswith("https://"):
        problems.append(f"SUPABASE_URL must be https://, not {settings.supabase_url!r}")
    if settings.livekit_url and not settings.livekit_url.startswith("wss://"):
        problems.append(f"LIVEKIT_URL must be wss://, not {settings.livekit_url!r}")
    if settings.s3_endpoint_url and not settings.s3_endpoint_url.startswith("https://"):
        problems.append(f"WORKBENCH_S3_ENDPOINT must be https://, not {settings.s3_endpoint_url!r}")
    if settings.site_url and not settings.site_url.startswith("https://"):
        problems.append(f"WORKBENCH_SITE_URL must be https://, not {settings.site_url!r}")
    for name, url in (
        ("DATABASE_URL", settings.database_url),
        ("DATABASE_ADMIN_URL", settings.database_admin_url),
    ):
        if url is not None:
            query = parse_qs(urlsplit(url.get_secret_value()).query)
            if query.get("sslmode", [""])[-1] not in ("require", "verify-ca", "verify-full"):
                problems.append(f"{name} needs sslmode=require (or verify-ca / verify-full)")
    return problems


class Settings(BaseSettings):
    """Where every service lives and how to reach it.

    In local mode the URLs default to the loopback ports below and the keys
    come from `<local_dir>/secrets.json`, written by `./dev up`.
    In hosted mode every URL and key must be given explicitly.
    """

    model_config = SettingsConfigDict(
        env_file=env_file_path(),
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # Where the services live: all on this machine, or hosted. (A "stack" in this project is
    # always a model stack; WORKBENCH_STACK, this setting's old name, is still read.)
    deployment: Literal["local", "hosted"] = Field(
        "local",
        validation_alias=_env("WORKBENCH_DEPLOYMENT", "deployment", DEPRECATED_DEPLOYMENT_VARIABLE),
    )
    local_dir: Path = Field(
        REPO_ROOT / ".local", validation_alias=_env("WORKBENCH_LOCAL_DIR", "local_dir")
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir, validation_alias=_env("WORKBENCH_CACHE_DIR", "cache_dir")
    )
    # Built datasets and eval run folders (git-ignored; never committed).
    data_dir: Path = Field(
        REPO_ROOT / "data", validation_alias=_env("WORKBENCH_DATA_DIR", "data_dir")
    )

    postgres_port: int = Field(
        54322, ge=1, le=65535, validation_alias=_env("WORKBENCH_POSTGRES_PORT", "postgres_port")
    )
    auth_port: int = Field(
        9999, ge=1, le=65535, validation_alias=_env("WORKBENCH_AUTH_PORT", "auth_port")
    )
    livekit_port: int = Field(
        7880, ge=1, le=65535, validation_alias=_env("WORKBENCH_LIVEKIT_PORT", "livekit_port")
    )
    livekit_tcp_port: int = Field(
        7881,
        ge=1,
        le=65535,
        validation_alias=_env("WORKBENCH_LIVEKIT_TCP_PORT", "livekit_tcp_port"),
    )
    livekit_udp_port: int = Field(
        7882,
        ge=1,
        le=65535,
        validation_alias=_env("WORKBENCH_LIVEKIT_UDP_PORT", "livekit_udp_port"),
    )
    mail_port: int = Field(
        54325, ge=1, le=65535, validation_alias=_env("WORKBENCH_MAIL_PORT", "mail_port")
    )
    agent_port: int = Field(
        8089, ge=1, le=65535, validation_alias=_env("WORKBENCH_AGENT_PORT", "agent_port")
    )
    # The stack file one worker process runs (`./dev up` sets it per worker from
    # WORKBENCH_AGENT_STACKS; a worker started by hand may name any stack file).
    agent_stack: Path = Field(
        REPO_ROOT / "configs" / "stacks" / "cpu-small.yaml",
        validation_alias=_env("WORKBENCH_AGENT_STACK", "agent_stack"),
    )
    panel_port: int = Field(
        5006, ge=1, le=65535, validation_alias=_env("WORKBENCH_PANEL_PORT", "panel_port")
    )
    # Prometheus metrics: the web app's on their own loopback port (never through the
    # public origin), LiveKit's, and the optional local Prometheus that scrapes them and
    # every agent worker (`/metrics` on the worker's port) with the alert rules.
    panel_metrics_port: int = Field(
        9102,
        ge=1,
        le=65535,
        validation_alias=_env("WORKBENCH_PANEL_METRICS_PORT", "panel_metrics_port"),
    )
    livekit_metrics_port: int = Field(
        6789,
        ge=1,
        le=65535,
        validation_alias=_env("WORKBENCH_LIVEKIT_METRICS_PORT", "livekit_metrics_port"),
    )
    # LiveKit nodes `./dev up` runs: more than one is LiveKit's multi-node mode, the
    # nodes sharing rooms through a Redis (Debian's redis-server, on loopback). Node n
    # (from 2) takes the ports of the first plus 10 x (n - 1), its metrics port + n - 1.
    livekit_nodes: int = Field(
        1, ge=1, le=8, validation_alias=_env("WORKBENCH_LIVEKIT_NODES", "livekit_nodes")
    )
    redis_port: int = Field(
        6379, ge=1, le=65535, validation_alias=_env("WORKBENCH_REDIS_PORT", "redis_port")
    )
    prometheus: bool = Field(False, validation_alias=_env("WORKBENCH_PROMETHEUS", "prometheus"))
    prometheus_port: int = Field(
        9090, ge=1, le=65535, validation_alias=_env("WORKBENCH_PROMETHEUS_PORT", "prometheus_port")
    )
    # Loopback by default; a deployment behind a proxy or a test host sets its address.
    panel_address: str = Field(
        "127.0.0.1", validation_alias=_env("WORKBENCH_PANEL_ADDRESS", "panel_address")
    )

    # The model stacks conversations may run on (names of files in configs/stacks/),
    # comma-separated; the first is the one users get, researchers choose among the rest.
    # `./dev up` starts one worker for each; a hosted deployment lists what its workers run.
    agent_stacks: str = Field(
        "cpu-small",
        pattern=r"^\s*[a-z0-9][a-z0-9_-]{0,63}\s*(,\s*[a-z0-9][a-z0-9_-]{0,63}\s*)*$",
        validation_alias=_env("WORKBENCH_AGENT_STACKS", "agent_stacks"),
    )
    # Workers `./dev up` starts for each stack (in production: as many as machines allow).
    agent_workers: int = Field(
        1, ge=1, le=16, validation_alias=_env("WORKBENCH_AGENT_WORKERS", "agent_workers")
    )
    # The prefix of the names agent workers register under, one per stack
    # (`agent_name_for`); rooms are dispatched to the chosen stack's name explicitly.
    agent_name: str = Field(
        "voice-workbench",
        min_length=1,
        max_length=100,
        validation_alias=_env("WORKBENCH_AGENT_NAME", "agent_name"),
    )
    # Live conversations one user may hold at once (each takes an agent slot).
    max_rooms_per_user: int = Field(
        2, ge=1, le=100, validation_alias=_env("WORKBENCH_MAX_ROOMS_PER_USER", "max_rooms_per_user")
    )
    # Agent slots of each model stack that rooms of plain users (anyone may register)
    # leave free for researchers and admins: accounts made by the dozen cannot take them all.
    rooms_kept_for_staff: int = Field(
        1,
        ge=0,
        le=1000,
        validation_alias=_env("WORKBENCH_ROOMS_KEPT_FOR_STAFF", "rooms_kept_for_staff"),
    )

    # Serve beyond localhost over HTTPS (browsers give the microphone only to secure
    # pages): the hostname people open, the port, and the address to bind (default: what
    # the hostname resolves to). A certificate of one's own, else a local CA's (.local/tls).
    tls_host: str | None = Field(None, validation_alias=_env("WORKBENCH_TLS_HOST", "tls_host"))
    tls_port: int = Field(
        8443, ge=1, le=65535, validation_alias=_env("WORKBENCH_TLS_PORT", "tls_port")
    )
    tls_address: str | None = Field(
        None, validation_alias=_env("WORKBENCH_TLS_ADDRESS", "tls_address")
    )
    tls_cert: Path | None = Field(None, validation_alias=_env("WORKBENCH_TLS_CERT", "tls_cert"))
    tls_key: Path | None = Field(None, validation_alias=_env("WORKBENCH_TLS_KEY", "tls_key"))

    # Where people open the web app; links in mail (password reset, confirmation) point
    # here, never at whatever Host header a request carried.
    site_url: str | None = Field(None, validation_alias=_env("WORKBENCH_SITE_URL", "site_url"))
    # Reverse proxies in front of the web app (comma-separated addresses or CIDRs), whose
    # X-Forwarded-For is believed for rate limits; none by default.
    trusted_proxies: str | None = Field(
        None, validation_alias=_env("WORKBENCH_TRUSTED_PROXIES", "trusted_proxies")
    )
    # Local Supabase Auth: require the confirmation mail before a new account signs in.
    auth_confirm_email: bool = Field(
        False, validation_alias=_env("WORKBENCH_AUTH_CONFIRM_EMAIL", "auth_confirm_email")
    )

    supabase_url: str | None = Field(None, validation_alias=_env("SUPABASE_URL", "supabase_url"))
    supabase_anon_key: SecretStr | None = Field(
        None, validation_alias=_env("SUPABASE_ANON_KEY", "supabase_anon_key")
    )
    supabase_service_role_key: SecretStr | None = Field(
        None, validation_alias=_env("SUPABASE_SERVICE_ROLE_KEY", "supabase_service_role_key")
    )
    supabase_jwt_secret: SecretStr | None = Field(
        None, validation_alias=_env("SUPABASE_JWT_SECRET", "supabase_jwt_secret")
    )
    # What the web app, the agent and the CLIs connect as: `authenticator` (it can only
    # `set role` to anon/authenticated/service_role), so RLS never rests on the code.
    database_url: SecretStr | None = Field(
        None, validation_alias=_env("DATABASE_URL", "database_url")
    )
    # The owner's connection, for migrations and the local stack's housekeeping only.
    database_admin_url: SecretStr | None = Field(
        None, validation_alias=_env("DATABASE_ADMIN_URL", "database_admin_url")
    )
    livekit_url: str | None = Field(None, validation_alias=_env("LIVEKIT_URL", "livekit_url"))
    livekit_api_key: str | None = Field(
        None, validation_alias=_env("LIVEKIT_API_KEY", "livekit_api_key")
    )
    livekit_api_secret: SecretStr | None = Field(
        None, validation_alias=_env("LIVEKIT_API_SECRET", "livekit_api_secret")
    )
    storage_url: str | None = Field(None, validation_alias=_env("STORAGE_URL", "storage_url"))
    # An s3:// STORAGE_URL on an S3-compatible endpoint (Supabase Storage's is
    # https://<project>.supabase.co/storage/v1/s3, with the project's S3 access keys).
    s3_endpoint_url: str | None = Field(
        None, validation_alias=_env("WORKBENCH_S3_ENDPOINT", "s3_endpoint_url")
    )
    s3_region: str | None = Field(None, validation_alias=_env("WORKBENCH_S3_REGION", "s3_region"))
    s3_access_key_id: str | None = Field(
        None, validation_alias=_env("WORKBENCH_S3_ACCESS_KEY_ID", "s3_access_key_id")
    )
    s3_secret_access_key: SecretStr | None = Field(
        None, validation_alias=_env("WORKBENCH_S3_SECRET_ACCESS_KEY", "s3_secret_access_key")
    )
    # Signs the web server's cookies (XSRF tokens); never sent to a browser.
    cookie_secret: SecretStr | None = Field(
        None, validation_alias=_env("WORKBENCH_COOKIE_SECRET", "cookie_secret")
    )

    @field_validator("supabase_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"must be an http(s) URL such as https://<project>.supabase.co, got {value!r}"
            )
        if parts.path not in ("", "/"):
            raise ValueError(
                f"give the project URL without a path (https://<project>.supabase.co), got {value!r}"
            )
        return value.rstrip("/")

    @field_validator("livekit_url")
    @classmethod
    def _ws_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(
                f"must be a ws:// or wss:// URL such as wss://<project>.livekit.cloud, got {value!r}"
            )
        return value.rstrip("/")

    @field_validator("database_url", "database_admin_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        scheme = urlsplit(value.get_secret_value()).scheme
        if scheme not in ("postgres", "postgresql"):
            raise ValueError(
                "must be a postgresql:// connection string (scheme was " + repr(scheme) + ")"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _fill_local_defaults(cls, data: Any) -> Any:
        """In local mode, fill unset URLs and keys from the stack's own files."""
        if not isinstance(data, dict):
            return data
        _warn_of_the_old_deployment_name()
        deployment = _first(data, "WORKBENCH_DEPLOYMENT", "deployment") or "local"
        if deployment != "local":
            return data
        local_dir = Path(_first(data, "WORKBENCH_LOCAL_DIR", "local_dir") or REPO_ROOT / ".local")
        secrets = _read_local_secrets(local_dir)
        # A malformed port is left for field validation to report by name.
        ports = {
            name: _int_or(
                _first(data, f"WORKBENCH_{name.upper()}_PORT", f"{name}_port"),
                cls.model_fields[f"{name}_port"].default,
            )
            for name in ("postgres", "auth", "livekit")
        }
        defaults: dict[str, Any] = {
            "supabase_url": f"http://127.0.0.1:{ports['auth']}",
            "livekit_url": f"ws://127.0.0.1:{ports['livekit']}",
            "storage_url": str(local_dir / "storage"),
            "supabase_anon_key": secrets.get("anon_key"),
            "supabase_service_role_key": secrets.get("service_role_key"),
            "supabase_jwt_secret": secrets.get("jwt_secret"),
            "livekit_api_key": secrets.get("livekit_api_key"),
            "livekit_api_secret": secrets.get("livekit_api_secret"),
            "cookie_secret": secrets.get("cookie_secret"),
        }
        local_db = f"127.0.0.1:{ports['postgres']}/postgres"
        if "authenticator_password" in secrets:
            defaults["database_url"] = (
                f"postgresql://authenticator:{secrets['authenticator_password']}@{local_db}"
            )
        if "postgres_password" in secrets:
            defaults["database_admin_url"] = (
                f"postgresql://postgres:{secrets['postgres_password']}@{local_db}"
            )
        merged = dict(data)
        for field, value in defaults.items():
            env_name = str(cls.model_fields[field].validation_alias.choices[0])  # type: ignore[union-attr]
            if value is not None and _first(merged, env_name, field) is None:
                merged[field] = value
        return merged

    @model_validator(mode="after")
    def _hosted_needs_everything(self) -> Settings:
        if self.deployment != "hosted":
            return self
        required = {
            "SUPABASE_URL": self.supabase_url,
            "SUPABASE_ANON_KEY": self.supabase_anon_key,
            "SUPABASE_SERVICE_ROLE_KEY": self.supabase_service_role_key,
            "DATABASE_URL": self.database_url,
            "LIVEKIT_URL": self.livekit_url,
            "LIVEKIT_API_KEY": self.livekit_api_key,
            "LIVEKIT_API_SECRET": self.livekit_api_secret,
            "STORAGE_URL": self.storage_url,
        }
        missing = [name for name, value in required.items() if value is None]
        if missing:
            raise ValueError(
                "WORKBENCH_DEPLOYMENT=hosted needs "
                + ", ".join(missing)
                + " (see README, 'Hosted services')"
            )
        insecure = _insecure_transports(self)
        if insecure:
            raise ValueError(
                "WORKBENCH_DEPLOYMENT=hosted talks to its services across a network, encrypted: "
                + "; ".join(insecure)
            )
        return self

    def storage_options(self) -> dict[str, Any]:
        """fsspec options for STORAGE_URL: s3fs's endpoint, region, keys and path-style
        addressing (Supabase Storage names the bucket in the path); none for a folder.
        Without WORKBENCH_S3_* keys s3fs takes AWS's own (environment, instance role)."""
        if not (self.storage_url or "").startswith("s3://"):
            return {}
        options: dict[str, Any] = {
            "endpoint_url": self.s3_endpoint_url,
            "client_kwargs": {"region_name": self.s3_region},
            "config_kwargs": {"s3": {"addressing_style": "path"}},
        }
        if self.s3_access_key_id and self.s3_secret_access_key:
            options["key"] = self.s3_access_key_id
            options["secret"] = self.s3_secret_access_key.get_secret_value()
        return options

    @property
    def is_local(self) -> bool:
        """True when the embedded local stack serves this process."""
        return self.deployment == "local"

    @property
    def journal_dir(self) -> Path:
        """Where agent workers journal each conversation before the database has it."""
        return self.local_dir / "agent-journal"

    @property
    def auth_url(self) -> str:
        """Base URL of the Supabase Auth (GoTrue) HTTP API."""
        assert self.supabase_url is not None  # filled in local mode, required in hosted mode
        # Locally GoTrue is reached directly; a hosted project routes it under /auth/v1.
        return self.supabase_url if self.is_local else f"{self.supabase_url}/auth/v1"

    @property
    def public_url(self) -> str:
        """The web app's address as people open it (WORKBENCH_SITE_URL, the TLS host, else loopback)."""
        if self.site_url:
            return self.site_url.rstrip("/")
        if self.tls_host:
            port = "" if self.tls_port == 443 else f":{self.tls_port}"
            return f"https://{self.tls_host}{port}"
        return f"http://127.0.0.1:{self.panel_port}"

    @property
    def browser_livekit_url(self) -> str | None:
        """LiveKit's URL as browsers reach it: through the TLS proxy (wss) when there is one."""
        if self.tls_host and self.is_local:
            port = "" if self.tls_port == 443 else f":{self.tls_port}"
            return f"wss://{self.tls_host}{port}"
        return self.livekit_url

    @property
    def jwks_url(self) -> str:
        """Where a hosted project publishes its asymmetric JWT signing keys."""
        return f"{self.auth_url}/.well-known/jwks.json"

    @property
    def stack_names(self) -> list[str]:
        """The stacks conversations may run on, the default (what users get) first."""
        names = [name.strip() for name in self.agent_stacks.split(",")]
        return list(dict.fromkeys(names))

    @property
    def default_stack(self) -> str:
        """The stack a conversation runs on unless a researcher chooses another."""
        return self.stack_names[0]

    def agent_name_for(self, stack: str) -> str:
        """The name the workers of `stack` register under with LiveKit."""
        return f"{self.agent_name}-{stack}"

    @property
    def livekit_http_url(self) -> str:
        """The LiveKit server API URL (same host as the signalling URL)."""
        assert self.livekit_url is not None
        return self.livekit_url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)


def _warn_of_the_old_deployment_name() -> None:
    if DEPRECATED_DEPLOYMENT_VARIABLE in os.environ and "WORKBENCH_DEPLOYMENT" not in os.environ:
        warnings.warn(
            f"{DEPRECATED_DEPLOYMENT_VARIABLE} is now WORKBENCH_DEPLOYMENT (local or hosted); "
            "the old name still works for now: rename it in your environment or .env",
            FutureWarning,
            stacklevel=2,
        )


def _first(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        for candidate in (key, key.lower(), key.upper()):
            if data.get(candidate) is not None:
                return data[candidate]
    return None


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _read_local_secrets(local_dir: Path) -> dict[str, str]:
    path = local_dir / LOCAL_SECRETS_FILE
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable ({exc}); run `./dev up` to regenerate it") from exc


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, `.env` and `overrides`.

    Raises SettingsError with one line per problem, each naming the
    environment variable to fix.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            location = ".".join(str(part) for part in error["loc"]) or "settings"
            env_name = _env_name_for(location)
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{env_name}: {message}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


def _env_name_for(location: str) -> str:
    field = Settings.model_fields.get(location)
    if field is not None and isinstance(field.validation_alias, AliasChoices):
        return str(field.validation_alias.choices[0])
    for field in Settings.model_fields.values():
        if (
            isinstance(field.validation_alias, AliasChoices)
            and location in field.validation_alias.choices
        ):
            return str(field.validation_alias.choices[0])
    return location


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Call `get_settings.cache_clear()` to reread."""
    return load_settings()
