"""Typed async repositories, one per aggregate. All SQL of the app lives here.

A repository wraps a connection already inside an identity: `rls_session`
(a user, under RLS) or `service_session` (the service, explicit about whom it
acts for). The identity decides what each query may see and change; the
repositories never filter by user in Python.

    async with pool.connection() as conn, rls_session(conn, claims):
        profile = await ProfilesRepo(conn).mine()
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from workbench.db.errors import InvalidInput, NotFound, translated
from workbench.db.models import (
    ActivityDaily,
    AnalyticsKind,
    AppRole,
    Conversation,
    ConversationStatus,
    EvalRun,
    EvalSample,
    Experiment,
    Export,
    LatencyDaily,
    Profile,
    PromptVersion,
    SessionPrompt,
    SystemPrompt,
    Turn,
    TurnDraft,
    UserSettings,
    Variant,
    variables_in,
)

M = TypeVar("M", bound=BaseModel)
Conn = AsyncConnection[Any]


class _Repo:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def _one(
        self, model: type[M], query: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> M:
        with translated():
            async with self.conn.cursor(row_factory=class_row(model)) as cur:
                await cur.execute(query, params)
                row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no {model.__name__} matches (or it is not visible to this user)")
        return row

    async def _all(
        self, model: type[M], query: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[M]:
        with translated():
            async with self.conn.cursor(row_factory=class_row(model)) as cur:
                await cur.execute(query, params)
                return await cur.fetchall()

    async def _execute(self, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        with translated():
            cur = await self.conn.execute(query, params)
            return cur.rowcount


_PROFILE = "id, display_name, avatar_path, role::text as role, settings, created_at, updated_at"


class ProfilesRepo(_Repo):
    """Profiles and roles."""

    async def mine(self) -> Profile:
        """The caller's profile."""
        return await self._one(
            Profile, f"select {_PROFILE} from public.profiles where id = auth.uid()"
        )

    async def roles_held(self) -> set[AppRole]:
        """Every role the caller has at least (admin > researcher > user), as `has_role` decides in SQL."""
        with translated():
            cur = await self.conn.execute(
                "select r::text from unnest(enum_range(null::public.app_role)) r where public.has_role(r)"
            )
            return {row[0] for row in await cur.fetchall()}

    async def get(self, user_id: UUID) -> Profile:
        """A profile the caller may see (their own; any, for admins)."""
        return await self._one(
            Profile, f"select {_PROFILE} from public.profiles where id = %s", [user_id]
        )

    async def list_all(self) -> list[Profile]:
        """Every profile the caller may see, oldest first."""
        return await self._all(
            Profile, f"select {_PROFILE} from public.profiles order by created_at"
        )

    async def update_mine(
        self,
        *,
        display_name: str | None = None,
        avatar_path: str | None = None,
        settings: UserSettings | None = None,
    ) -> Profile:
        """Change the caller's display name, avatar path or settings."""
        return await self._one(
            Profile,
            f"""update public.profiles set
                  display_name = coalesce(%(display_name)s, display_name),
                  avatar_path = coalesce(%(avatar_path)s, avatar_path),
                  settings = coalesce(%(settings)s, settings)
                where id = auth.uid() returning {_PROFILE}""",
            {
                "display_name": display_name,
                "avatar_path": avatar_path,
                "settings": Jsonb(settings.to_json()) if settings is not None else None,
            },
        )

    async def set_role(self, user_id: UUID, role: AppRole) -> None:
        """Change a user's role (admins only; checked in SQL by set_user_role)."""
        await self._execute("select public.set_user_role(%s, %s::public.app_role)", [user_id, role])


_PROMPT = "id, slug, title, description, active_version_id, created_at"
_VERSION = "id, prompt_id, version, body, variables, notes, author_id, created_at"
_EXPERIMENT = (
    "id, prompt_id, name, status, target_roles::text[] as target_roles, started_at, stopped_at"
)
_VARIANT = "id, experiment_id, prompt_version_id, label, weight::float8 as weight"


class PromptsRepo(_Repo):
    """System prompts, versions, activation and experiments."""

    async def create(self, *, slug: str, title: str, description: str = "") -> SystemPrompt:
        """A new prompt without versions (admins)."""
        return await self._one(
            SystemPrompt,
            f"insert into public.system_prompts (slug, title, description) values (%s, %s, %s) returning {_PROMPT}",
            [slug, title, description],
        )

    async def by_slug(self, slug: str) -> SystemPrompt:
        """A prompt by its slug."""
        return await self._one(
            SystemPrompt, f"select {_PROMPT} from public.system_prompts where slug = %s", [slug]
        )

    async def all_prompts(self) -> list[SystemPrompt]:
        """Every prompt the caller may see."""
        return await self._all(
            SystemPrompt, f"select {_PROMPT} from public.system_prompts order by slug"
        )

    async def add_version(self, prompt_id: UUID, body: str, *, notes: str = "") -> PromptVersion:
        """A new immutable version; its number and variables are derived, not given."""
        return await self._one(
            PromptVersion,
            f"""insert into public.prompt_versions (prompt_id, version, body, variables, notes)
                values (%s, 0, %s, %s, %s) returning {_VERSION}""",
            [prompt_id, body, variables_in(body), notes],
        )

    async def version_labels(self) -> dict[str, UUID]:
        """Every visible prompt version as "slug vN" -> version id (for filters)."""
        with translated():
            cur = await self.conn.execute(
                """select v.id, p.slug, v.version from public.prompt_versions v
                   join public.system_prompts p on p.id = v.prompt_id order by p.slug, v.version"""
            )
            return {f"{slug} v{version}": vid for vid, slug, version in await cur.fetchall()}

    async def versions(self, prompt_id: UUID) -> list[PromptVersion]:
        """All versions of a prompt, newest first."""
        return await self._all(
            PromptVersion,
            f"select {_VERSION} from public.prompt_versions where prompt_id = %s order by version desc",
            [prompt_id],
        )

    async def version(self, version_id: UUID) -> PromptVersion:
        """One version by id."""
        return await self._one(
            PromptVersion,
            f"select {_VERSION} from public.prompt_versions where id = %s",
            [version_id],
        )

    async def activate(self, prompt_id: UUID, version_id: UUID) -> SystemPrompt:
        """Point the prompt at a version (activate or roll back)."""
        return await self._one(
            SystemPrompt,
            f"update public.system_prompts set active_version_id = %s where id = %s returning {_PROMPT}",
            [version_id, prompt_id],
        )

    async def create_experiment(
        self,
        prompt_id: UUID,
        name: str,
        *,
        target_roles: Sequence[AppRole] = ("user", "researcher", "admin"),
    ) -> Experiment:
        """A draft experiment on a prompt."""
        return await self._one(
            Experiment,
            f"""insert into public.prompt_experiments (prompt_id, name, target_roles)
                values (%s, %s, %s::public.app_role[]) returning {_EXPERIMENT}""",
            [prompt_id, name, list(target_roles)],
        )

    async def add_variant(
        self, experiment_id: UUID, version_id: UUID, *, label: str, weight: float
    ) -> Variant:
        """An arm of a draft experiment."""
        return await self._one(
            Variant,
            f"""insert into public.experiment_variants (experiment_id, prompt_version_id, label, weight)
                values (%s, %s, %s, %s) returning {_VARIANT}""",
            [experiment_id, version_id, label, weight],
        )

    async def experiments(self, prompt_id: UUID) -> list[Experiment]:
        """Experiments on a prompt, by name."""
        return await self._all(
            Experiment,
            f"select {_EXPERIMENT} from public.prompt_experiments where prompt_id = %s order by name",
            [prompt_id],
        )

    async def variants(self, experiment_id: UUID) -> list[Variant]:
        """Arms of an experiment."""
        return await self._all(
            Variant,
            f"select {_VARIANT} from public.experiment_variants where experiment_id = %s order by label",
            [experiment_id],
        )

    async def start_experiment(self, experiment_id: UUID) -> Experiment:
        """Start a draft experiment that has at least two arms."""
        if len(await self.variants(experiment_id)) < 2:
            raise InvalidInput("an experiment needs at least two variants to start")
        return await self._one(
            Experiment,
            f"""update public.prompt_experiments set status = 'running', started_at = now()
                where id = %s and status = 'draft' returning {_EXPERIMENT}""",
            [experiment_id],
        )

    async def stop_experiment(self, experiment_id: UUID) -> Experiment:
        """Stop a running experiment."""
        return await self._one(
            Experiment,
            f"""update public.prompt_experiments set status = 'stopped', stopped_at = now()
                where id = %s and status = 'running' returning {_EXPERIMENT}""",
            [experiment_id],
        )

    async def assign(self, experiment_id: UUID, unit: str) -> UUID:
        """The variant `unit` (e.g. a user id) gets: stable and weight-proportional."""
        with translated():
            cur = await self.conn.execute(
                "select public.assign_variant(%s, %s)", [experiment_id, unit]
            )
            row = await cur.fetchone()
        if row is None or row[0] is None:
            raise NotFound("experiment has no variants")
        return UUID(str(row[0]))

    async def for_session(self, slug: str, *, user_id: UUID, role: AppRole) -> SessionPrompt:
        """The version a new session of this user runs: an experiment arm if one targets them, else the active one."""
        prompt = await self.by_slug(slug)
        running = await self._all(
            Experiment,
            f"""select {_EXPERIMENT} from public.prompt_experiments
                where prompt_id = %s and status = 'running' and %s::public.app_role = any (target_roles)""",
            [prompt.id, role],
        )
        if running:
            experiment = running[0]
            variant_id = await self.assign(experiment.id, str(user_id))
            variant = next(v for v in await self.variants(experiment.id) if v.id == variant_id)
            version = await self.version(variant.prompt_version_id)
            return SessionPrompt(
                version=version, experiment_id=experiment.id, variant_id=variant_id
            )
        if prompt.active_version_id is None:
            raise NotFound(f"prompt {slug!r} has no active version")
        return SessionPrompt(version=await self.version(prompt.active_version_id))


_CONVERSATION = "id, owner_id, room_name, status, started_at, ended_at, prompt_version_id, experiment_id, variant_id, model_specs"
_TURN_COLUMNS = (
    "conversation_id, idx, role, text, started_at, ended_at, eou_delay_s, stt_s, llm_ttft_s, tts_ttfb_s, "
    "v2v_s, v2v_audio_s, interrupted, false_interruption, audio_path, filter_verdict"
)
_TURN = f"id, {_TURN_COLUMNS}, reference_text"


def _turn_params(turn: TurnDraft) -> list[Any]:
    values = turn.model_dump()
    values["filter_verdict"] = (
        Jsonb(turn.filter_verdict) if turn.filter_verdict is not None else None
    )
    return [values[name.strip()] for name in _TURN_COLUMNS.split(",")]


class ConversationsRepo(_Repo):
    """Conversations and their turns."""

    async def start(
        self,
        *,
        owner_id: UUID | None = None,
        conversation_id: UUID | None = None,
        room_name: str | None = None,
        prompt: SessionPrompt | None = None,
        model_specs: dict[str, Any] | None = None,
    ) -> Conversation:
        """A new active conversation (owner defaults to the caller).

        With `conversation_id` the call is idempotent: replaying it after an
        outage returns the row already written.
        """
        # Replays (a given id) return the existing row; that path is service code,
        # since a user session may not update `id`.
        conflict = "on conflict (id) do update set id = excluded.id" if conversation_id else ""
        return await self._one(
            Conversation,
            f"""insert into public.conversations
                  (id, owner_id, room_name, prompt_version_id, experiment_id, variant_id, model_specs)
                values (coalesce(%s, gen_random_uuid()), coalesce(%s, auth.uid()), %s, %s, %s, %s, %s)
                {conflict}
                returning {_CONVERSATION}""",
            [
                conversation_id,
                owner_id,
                room_name,
                prompt.version.id if prompt else None,
                prompt.experiment_id if prompt else None,
                prompt.variant_id if prompt else None,
                Jsonb(model_specs or {}),
            ],
        )

    async def get(self, conversation_id: UUID) -> Conversation:
        """A conversation the caller may see."""
        return await self._one(
            Conversation,
            f"select {_CONVERSATION} from public.conversations where id = %s",
            [conversation_id],
        )

    async def recent(
        self, *, limit: int = 50, before: datetime | None = None, owner_id: UUID | None = None
    ) -> list[Conversation]:
        """Conversations the caller may see (of one owner, if given), newest first."""
        return await self._all(
            Conversation,
            f"""select {_CONVERSATION} from public.conversations
                where (%(before)s::timestamptz is null or started_at < %(before)s)
                  and (%(owner)s::uuid is null or owner_id = %(owner)s)
                order by started_at desc limit %(limit)s""",
            {"before": before, "limit": limit, "owner": owner_id},
        )

    async def add_turn(self, turn: TurnDraft) -> Turn:
        """Store one completed turn."""
        placeholders = ", ".join(["%s"] * len(_TURN_COLUMNS.split(",")))
        return await self._one(
            Turn,
            f"insert into public.turns ({_TURN_COLUMNS}) values ({placeholders}) returning {_TURN}",
            _turn_params(turn),
        )

    async def add_turns(self, turns: Sequence[TurnDraft]) -> int:
        """Store many turns in one round trip (flushing a queue after an outage)."""
        placeholders = ", ".join(["%s"] * len(_TURN_COLUMNS.split(",")))
        with translated():
            async with self.conn.cursor() as cur:
                await cur.executemany(
                    f"insert into public.turns ({_TURN_COLUMNS}) values ({placeholders})"
                    " on conflict (conversation_id, idx) do nothing",
                    [_turn_params(t) for t in turns],
                )
                return cur.rowcount

    async def turns(self, conversation_id: UUID) -> list[Turn]:
        """Turns of a conversation in order."""
        return await self._all(
            Turn,
            f"select {_TURN} from public.turns where conversation_id = %s order by idx",
            [conversation_id],
        )

    async def report_heard_latency(
        self, *, room_name: str, agent_ordinal: int, v2v_audio_s: float
    ) -> bool:
        """The caller's browser heard agent reply `agent_ordinal` `v2v_audio_s` after the user stopped.

        Lands on that agent turn's `v2v_audio_s` now or when the agent writes the
        turn. False while the conversation row does not exist yet (report again later).
        """
        return (
            await self._execute(
                """insert into public.client_heard_latency (conversation_id, agent_ordinal, v2v_audio_s)
                   select c.id, %s, %s from public.conversations c
                   where c.room_name = %s and c.owner_id = auth.uid()
                   on conflict do nothing""",
                [agent_ordinal, v2v_audio_s, room_name],
            )
            > 0
        )

    async def correct_transcript(self, turn_id: int, reference_text: str) -> Turn:
        """Store a human correction of a turn's text (the reference for evals)."""
        return await self._one(
            Turn,
            f"update public.turns set reference_text = %s where id = %s returning {_TURN}",
            [reference_text, turn_id],
        )

    async def end(
        self, conversation_id: UUID, status: ConversationStatus = "completed"
    ) -> Conversation:
        """Close an active conversation."""
        return await self._one(
            Conversation,
            f"""update public.conversations set status = %s, ended_at = now()
                where id = %s and status = 'active' returning {_CONVERSATION}""",
            [status, conversation_id],
        )


class AnalyticsRepo(_Repo):
    """Usage events and the dashboard views."""

    async def record(self, kind: AnalyticsKind, payload: dict[str, Any] | None = None) -> None:
        """Record an event for the caller."""
        await self._execute(
            "insert into public.analytics_events (kind, payload) values (%s, %s)",
            [kind, Jsonb(payload or {})],
        )

    async def latency_daily(
        self,
        *,
        since: datetime,
        until: datetime,
        prompt_version_id: UUID | None = None,
        model_stack: str | None = None,
    ) -> list[LatencyDaily]:
        """Latency per day, prompt version and model stack in [since, until)."""
        return await self._all(
            LatencyDaily,
            """select * from public.analytics_latency_daily
               where day >= date_trunc('day', %(since)s::timestamptz) and day < %(until)s
                 and (%(prompt)s::uuid is null or prompt_version_id = %(prompt)s)
                 and (%(stack)s::text is null or model_stack = %(stack)s)
               order by day, model_stack""",
            {"since": since, "until": until, "prompt": prompt_version_id, "stack": model_stack},
        )

    async def experiment_arms(self, *, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Per experiment arm: agent turns, voice-to-voice mean and standard deviation, interruption rate.

        Aggregated in SQL under the caller's RLS (no turn rows leave the database).
        """
        with translated():
            cur = await self.conn.execute(
                """select e.name as experiment, v.label, count(t.id) as turns,
                          avg(t.v2v_s) as v2v_mean_s, stddev_samp(t.v2v_s) as v2v_sd_s,
                          avg(t.interrupted::int)::float8 as interruption_rate
                   from public.prompt_experiments e
                   join public.experiment_variants v on v.experiment_id = e.id
                   join public.conversations c on c.variant_id = v.id
                   join public.turns t on t.conversation_id = c.id and t.role = 'agent'
                   where c.started_at >= %s and c.started_at < %s
                   group by e.name, v.label order by e.name, v.label""",
                [since, until],
            )
            names = [d.name for d in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]

    async def activity_daily(self, *, since: datetime, until: datetime) -> list[ActivityDaily]:
        """Conversations and turns per day in [since, until)."""
        return await self._all(
            ActivityDaily,
            """select * from public.analytics_activity_daily
               where day >= date_trunc('day', %s::timestamptz) and day < %s order by day""",
            [since, until],
        )


_RUN = "id, task, task_version, dataset_id, spec, git_sha, status, metrics, started_at, finished_at"


class EvalsRepo(_Repo):
    """Eval runs and their samples."""

    async def open_run(
        self,
        *,
        run_id: UUID,
        task: str,
        task_version: str,
        dataset_id: str,
        spec: dict[str, Any],
        git_sha: str | None,
    ) -> EvalRun:
        """Open a run with a client-chosen id, or reopen it (status `running`) when resuming."""
        return await self._one(
            EvalRun,
            f"""insert into public.eval_runs (id, task, task_version, dataset_id, spec, git_sha)
                values (%s, %s, %s, %s, %s, %s)
                on conflict (id) do update set status = 'running', finished_at = null
                returning {_RUN}""",
            [run_id, task, task_version, dataset_id, Jsonb(spec), git_sha],
        )

    async def run(self, run_id: UUID) -> EvalRun:
        """One run the caller may see."""
        return await self._one(
            EvalRun, f"select {_RUN} from public.eval_runs where id = %s", [run_id]
        )

    async def samples(self, run_id: UUID) -> list[EvalSample]:
        """Per-sample rows of a run, by sample id."""
        return await self._all(
            EvalSample,
            """select sample_id, reference, hypothesis, metrics, error from public.eval_samples
               where run_id = %s order by sample_id""",
            [run_id],
        )

    async def add_samples(self, run_id: UUID, samples: Sequence[EvalSample]) -> None:
        """Store per-sample results (a re-sent sample replaces the earlier one, so resumes are safe)."""
        with translated():
            async with self.conn.cursor() as cur:
                await cur.executemany(
                    """insert into public.eval_samples (run_id, sample_id, reference, hypothesis, metrics, error)
                       values (%s, %s, %s, %s, %s, %s)
                       on conflict (run_id, sample_id) do update set reference = excluded.reference,
                         hypothesis = excluded.hypothesis, metrics = excluded.metrics, error = excluded.error""",
                    [
                        (run_id, s.sample_id, s.reference, s.hypothesis, Jsonb(s.metrics), s.error)
                        for s in samples
                    ],
                )

    async def finish_run(self, run_id: UUID, *, status: str, metrics: dict[str, Any]) -> EvalRun:
        """Close a run with its corpus metrics."""
        return await self._one(
            EvalRun,
            f"""update public.eval_runs set status = %s, metrics = %s, finished_at = now()
                where id = %s returning {_RUN}""",
            [status, Jsonb(metrics), run_id],
        )

    async def runs(self, *, task: str | None = None) -> list[EvalRun]:
        """Runs the caller may see, newest first."""
        return await self._all(
            EvalRun,
            f"select {_RUN} from public.eval_runs where %(task)s::text is null or task = %(task)s"
            " order by started_at desc",
            {"task": task},
        )


_EXPORT = "id, owner_id, conversation_id, format, status, object_path, error, created_at"


class ExportsRepo(_Repo):
    """Conversation export requests."""

    async def request(self, *, format: str, conversation_id: UUID | None = None) -> Export:
        """Ask for an export of one conversation, or of all the caller's conversations."""
        return await self._one(
            Export,
            f"insert into public.exports (format, conversation_id) values (%s, %s) returning {_EXPORT}",
            [format, conversation_id],
        )

    async def complete(
        self, export_id: UUID, *, object_path: str | None, error: str | None = None
    ) -> Export:
        """Mark an export ready (with its object) or failed (service)."""
        return await self._one(
            Export,
            f"""update public.exports set status = case when %(error)s::text is null then 'ready' else 'failed' end,
                  object_path = %(path)s, error = %(error)s, completed_at = now()
                where id = %(id)s returning {_EXPORT}""",
            {"id": export_id, "path": object_path, "error": error},
        )

    async def mine(self) -> list[Export]:
        """The caller's exports, newest first."""
        return await self._all(
            Export, f"select {_EXPORT} from public.exports order by created_at desc"
        )


class RoomsRepo(_Repo):
    """Who each LiveKit room was opened for (service sessions only: `private.rooms`)."""

    async def register(self, name: str, owner_id: UUID) -> None:
        """Record that the web app opened room `name` for `owner_id` (before the room exists)."""
        await self._execute(
            "insert into private.rooms (name, owner_id) values (%s, %s)", [name, owner_id]
        )

    async def opened_since(self, owner_id: UUID, seconds: float) -> list[str]:
        """Rooms opened for `owner_id` in the last `seconds`, one at a time per owner.

        Takes a per-owner lock until the transaction ends, so two Start clicks
        cannot both pass a limit counted from this list.
        """
        with translated():
            await self.conn.execute(
                "select pg_advisory_xact_lock(hashtext('private.rooms:' || %s::text))", [owner_id]
            )
            cur = await self.conn.execute(
                """select name from private.rooms
                   where owner_id = %s and created_at > now() - make_interval(secs => %s)""",
                [owner_id, seconds],
            )
            return [str(row[0]) for row in await cur.fetchall()]

    async def owner_of(self, name: str) -> UUID | None:
        """The user room `name` was opened for, or None if no one opened it here."""
        with translated():
            cur = await self.conn.execute(
                "select owner_id from private.rooms where name = %s", [name]
            )
            row = await cur.fetchone()
        return UUID(str(row[0])) if row else None
