"""Rows as typed models. Repositories return these, never raw tuples."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

AppRole = Literal["user", "researcher", "admin"]
# The roles from least to most (each holds the powers of those before it), as SQL ranks them.
APP_ROLES: tuple[AppRole, ...] = get_args(AppRole)
ConversationStatus = Literal["active", "completed", "interrupted", "failed"]


def ranks_at_least(role: AppRole, required: AppRole) -> bool:
    """`role` holds `required`'s powers (admin > researcher > user), as `public.has_role` decides."""
    return APP_ROLES.index(role) >= APP_ROLES.index(required)


def primary_language(tag: object) -> str | None:
    """The language of a language tag, as speech recognition takes it ("en-GB" -> "en")."""
    return str(tag or "").split("-")[0].lower() or None


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True)


class UiSettings(BaseModel):
    """Interface preferences."""

    model_config = ConfigDict(extra="forbid", strict=True)

    theme: Literal["light", "dark", "system"] | None = None
    show_latency: bool | None = None
    show_transcript: bool | None = None


class UserSettings(BaseModel):
    """A profile's settings; the database checks the same schema (`valid_user_settings`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    stack: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    voice: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
    language: str | None = Field(None, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    ui: UiSettings | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON stored in profiles.settings (unset keys omitted)."""
        return self.model_dump(exclude_none=True)


class Profile(_Row):
    """A user's profile."""

    id: UUID
    display_name: str
    avatar_path: str | None
    role: AppRole
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SystemPrompt(_Row):
    """A named prompt and its active version."""

    id: UUID
    slug: str
    title: str
    description: str
    active_version_id: UUID | None
    created_at: datetime
    archived_at: datetime | None = None


_VARIABLE = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
# The variable every session fills from its participant (their display name) unless set.
BUILT_IN_VARIABLE = "user_name"


class PromptVersion(_Row):
    """An immutable prompt text."""

    id: UUID
    prompt_id: UUID
    version: int
    body: str
    variables: list[str]
    variable_defaults: dict[str, str] = Field(default_factory=dict)
    notes: str
    author_id: UUID | None
    created_at: datetime

    def values_for(self, *, user_name: str, **layers: dict[str, str]) -> dict[str, str]:
        """Each variable's value: the last of `layers` that sets it (e.g. arm=..., room=...),
        else the version's default; `user_name` defaults to the participant's display name.

        A variable of a version made before defaults existed gets the display name, as
        such versions did (`variables_without_default` says which).
        """
        values: dict[str, str] = {}
        for name in self.variables:
            chosen = [layer[name] for layer in layers.values() if name in layer]
            fallback = user_name if name == BUILT_IN_VARIABLE else self.variable_defaults.get(name)
            values[name] = chosen[-1] if chosen else fallback if fallback is not None else user_name
        return values

    @property
    def variables_without_default(self) -> list[str]:
        """Variables (but user_name) with no default: only in versions made before defaults."""
        return [
            v for v in self.variables if v != BUILT_IN_VARIABLE and v not in self.variable_defaults
        ]

    def render(self, values: dict[str, str]) -> str:
        """The body with its {{variables}} filled from `values`, then the version's defaults;
        a variable with neither is an error."""
        values = {**self.variable_defaults, **values}
        missing = [name for name in self.variables if name not in values]
        if missing:
            raise KeyError(f"prompt variables without a value: {', '.join(missing)}")
        return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), self.body)


def variables_in(body: str) -> list[str]:
    """The distinct {{placeholders}} of a prompt body, in order of appearance."""
    return list(dict.fromkeys(_VARIABLE.findall(body)))


class Experiment(_Row):
    """An A/B or multi-arm experiment over versions of one prompt."""

    id: UUID
    prompt_id: UUID
    name: str
    status: Literal["draft", "running", "stopped"]
    target_roles: list[AppRole]
    started_at: datetime | None
    stopped_at: datetime | None


class ArmTally(_Row):
    """An experiment arm and the conversations assigned to it so far."""

    experiment_id: UUID
    label: str
    weight: float
    conversations: int


class Variant(_Row):
    """One arm of an experiment."""

    id: UUID
    experiment_id: UUID
    prompt_version_id: UUID
    label: str
    weight: float
    variable_values: dict[str, str] = Field(default_factory=dict)


class SessionPrompt(_Row):
    """What a new session runs: the version, and the experiment arm that chose it if any
    (with the values that arm gives the version's variables)."""

    version: PromptVersion
    experiment_id: UUID | None = None
    variant_id: UUID | None = None
    arm_values: dict[str, str] = Field(default_factory=dict)


class Conversation(_Row):
    """One voice session."""

    id: UUID
    owner_id: UUID
    room_name: str | None
    status: ConversationStatus
    started_at: datetime
    ended_at: datetime | None
    prompt_version_id: UUID | None
    experiment_id: UUID | None
    variant_id: UUID | None
    model_specs: dict[str, Any]


class TurnDraft(BaseModel):
    """A completed turn as the agent writes it; latencies in seconds."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: UUID
    idx: int = Field(ge=0)
    role: Literal["user", "agent"]
    text: str
    started_at: datetime
    ended_at: datetime
    eou_delay_s: float | None = None
    stt_s: float | None = None
    llm_ttft_s: float | None = None
    tts_ttfb_s: float | None = None
    v2v_s: float | None = None
    v2v_audio_s: float | None = None
    interrupted: bool = False
    false_interruption: bool = False
    audio_path: str | None = None
    filter_verdict: dict[str, Any] | None = None
    # For agent turns: its place among the conversation's agent turns (0 = the greeting),
    # what the browser reports heard latency by; derived in SQL when not given.
    agent_ordinal: int | None = Field(default=None, ge=0)


class Turn(_Row):
    """A stored turn."""

    id: int
    conversation_id: UUID
    idx: int
    role: Literal["user", "agent"]
    text: str
    started_at: datetime
    ended_at: datetime
    eou_delay_s: float | None
    stt_s: float | None
    llm_ttft_s: float | None
    tts_ttfb_s: float | None
    v2v_s: float | None
    v2v_audio_s: float | None
    interrupted: bool
    false_interruption: bool
    audio_path: str | None
    filter_verdict: dict[str, Any] | None
    agent_ordinal: int | None
    reference_text: str | None
    reference_by: UUID | None = None
    reference_at: datetime | None = None


AnalyticsKind = Literal[
    "login",
    "logout",
    "page_view",
    "conversation_started",
    "conversation_ended",
    "settings_changed",
    "prompt_activated",
    "experiment_started",
    "experiment_stopped",
    "export_requested",
    "eval_run_started",
    "role_changed",
]


class AuditEvent(_Row):
    """An analytics event with the name of who acted (the audit trail)."""

    id: int
    occurred_at: datetime
    user_id: UUID | None
    who: str | None
    kind: AnalyticsKind
    payload: dict[str, Any]


class LatencyDaily(_Row):
    """A row of analytics_latency_daily."""

    day: datetime
    prompt_version_id: UUID | None
    model_stack: str
    simulated: bool  # simulated callers' traffic (evals simulate), not people's
    turns: int
    v2v_p50_s: float | None
    v2v_p95_s: float | None
    eou_delay_mean_s: float | None
    stt_mean_s: float | None
    llm_ttft_mean_s: float | None
    tts_ttfb_mean_s: float | None
    interruption_rate: float | None


class ConnectionDaily(_Row):
    """A row of analytics_connection_daily: the median conversation's connection quality."""

    day: datetime
    model_stack: str
    conversations: int
    rtt_p50_ms: float | None
    rtt_p95_ms: float | None
    jitter_p50_ms: float | None
    jitter_p95_ms: float | None
    loss_rate: float | None


class ActivityDaily(_Row):
    """A row of analytics_activity_daily."""

    day: datetime
    simulated: bool
    conversations: int
    turns: int


class EvalRun(_Row):
    """An evaluation run."""

    id: UUID
    task: str
    task_version: str
    dataset_id: str
    spec: dict[str, Any]
    git_sha: str | None
    status: Literal["running", "completed", "failed", "interrupted"]
    metrics: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None


class EvalSample(BaseModel):
    """One sample's result."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_id: str
    reference: str | None = None
    hypothesis: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class Export(_Row):
    """A requested export."""

    id: UUID
    owner_id: UUID
    conversation_id: UUID | None
    format: Literal["json", "csv", "parquet"]
    status: Literal["pending", "ready", "failed"]
    object_path: str | None
    error: str | None
    created_at: datetime


class StoredObject(_Row):
    """Metadata of an object in the store."""

    id: UUID
    bucket: Literal["audio", "avatars", "exports", "reports"]
    path: str
    owner_id: UUID
    content_type: str
    size_bytes: int
    sha256: str
    created_at: datetime

    @field_validator("path")
    @classmethod
    def _no_traversal(cls, value: str) -> str:
        if ".." in value.split("/"):
            raise ValueError("object path may not contain '..'")
        return value


WorkerState = Literal["loading", "ready", "failed", "gave_up"]


class WorkerBeat(BaseModel):
    """What an agent worker announces every few seconds (`public.agent_workers`)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=200)
    stack: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    agent_name: str = Field(min_length=1, max_length=200)
    spec: dict[str, Any]
    host: str = Field(min_length=1, max_length=255)
    state: WorkerState
    reason: str = Field("", max_length=2000)
    rooms: int = Field(0, ge=0)
    max_rooms: int = Field(ge=1)
    memory_mb: int | None = Field(None, ge=0)


class LiveStack(_Row):
    """A model stack with a fresh worker heartbeat (`public.live_stacks`)."""

    stack: str
    spec: dict[str, Any]
    workers: int  # ready ones
    rooms: int
    max_rooms: int
    worker_memory_mb: int | None
    problems: str | None

    @property
    def serving(self) -> bool:
        """At least one worker of this stack has its models ready."""
        return self.workers > 0

    @property
    def language(self) -> str | None:
        """The one language its speech recognition is fixed to, if it is."""
        language = (self.spec.get("stt") or {}).get("params", {}).get("language")
        return str(language) if language else None
