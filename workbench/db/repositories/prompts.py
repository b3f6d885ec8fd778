"""System prompts, their immutable versions, and A/B experiments over them."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from psycopg.types.json import Jsonb

from workbench.db.errors import InvalidInput, NotFound, translated
from workbench.db.models import (
    APP_ROLES,
    AppRole,
    ArmTally,
    Experiment,
    PromptVersion,
    SessionPrompt,
    SystemPrompt,
    Variant,
    variables_in,
)
from workbench.db.repositories._base import Repo

_PROMPT = "id, slug, title, description, active_version_id, created_at, archived_at"
_VERSION = (
    "id, prompt_id, version, body, variables, variable_defaults, notes, author_id, created_at"
)
_EXPERIMENT = (
    "id, prompt_id, name, status, target_roles::text[] as target_roles, started_at, stopped_at"
)
_VARIANT = "id, experiment_id, prompt_version_id, label, weight::float8 as weight, variable_values"


class PromptsRepo(Repo):
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
        """Every prompt the caller may see, archived ones left out."""
        return await self._all(
            SystemPrompt,
            f"select {_PROMPT} from public.system_prompts where archived_at is null order by slug",
        )

    async def archive(self, prompt_id: UUID) -> SystemPrompt:
        """Archive a prompt (admins): listed nowhere, no new session gets it; its history stays."""
        return await self._one(
            SystemPrompt,
            f"""update public.system_prompts set archived_at = now()
                where id = %s and archived_at is null returning {_PROMPT}""",
            [prompt_id],
        )

    async def add_version(
        self,
        prompt_id: UUID,
        body: str,
        *,
        notes: str = "",
        defaults: dict[str, str] | None = None,
    ) -> PromptVersion:
        """A new immutable version; its number and variables are derived, not given.

        `defaults`: a value for each {{variable}} but user_name (the database refuses a
        version without one, or a default for a variable the body does not have).
        """
        return await self._one(
            PromptVersion,
            f"""insert into public.prompt_versions
                  (prompt_id, version, body, variables, variable_defaults, notes)
                values (%s, 0, %s, %s, %s, %s) returning {_VERSION}""",
            [prompt_id, body, variables_in(body), Jsonb(defaults or {}), notes],
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
        target_roles: Sequence[AppRole] = APP_ROLES,
    ) -> Experiment:
        """A draft experiment on a prompt."""
        return await self._one(
            Experiment,
            f"""insert into public.prompt_experiments (prompt_id, name, target_roles)
                values (%s, %s, %s::public.app_role[]) returning {_EXPERIMENT}""",
            [prompt_id, name, list(target_roles)],
        )

    async def add_variant(
        self,
        experiment_id: UUID,
        version_id: UUID,
        *,
        label: str,
        weight: float,
        values: dict[str, str] | None = None,
    ) -> Variant:
        """An arm of a draft experiment; `values` set its version's variables for this arm."""
        return await self._one(
            Variant,
            f"""insert into public.experiment_variants
                  (experiment_id, prompt_version_id, label, weight, variable_values)
                values (%s, %s, %s, %s, %s) returning {_VARIANT}""",
            [experiment_id, version_id, label, weight, Jsonb(values or {})],
        )

    async def experiments(self, prompt_id: UUID) -> list[Experiment]:
        """Experiments on a prompt, by name."""
        return await self._all(
            Experiment,
            f"select {_EXPERIMENT} from public.prompt_experiments where prompt_id = %s order by name",
            [prompt_id],
        )

    async def arm_tallies(self, prompt_id: UUID) -> list[ArmTally]:
        """Each arm of the prompt's experiments with the conversations it was assigned
        (those the caller may see: all of them for an admin)."""
        return await self._all(
            ArmTally,
            """select v.experiment_id, v.label, v.weight::float8 as weight,
                      count(c.id)::int as conversations
               from public.experiment_variants v
               join public.prompt_experiments e on e.id = v.experiment_id
               left join public.conversations c on c.variant_id = v.id
               where e.prompt_id = %s
               group by v.id order by v.label""",
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

    async def pinned(self, slug: str, version: int) -> SessionPrompt | None:
        """Version `version` of prompt `slug` (a draft too) for a session of the acting user,
        or None: no such version, or the user is neither researcher nor admin (checked here,
        in SQL, against the acting user's role)."""
        found = await self._all(
            PromptVersion,
            f"""select {", ".join(f"v.{c.strip()}" for c in _VERSION.split(","))}
                from public.prompt_versions v join public.system_prompts p on p.id = v.prompt_id
                where p.slug = %s and v.version = %s and (select public.has_role('researcher'))""",
            [slug, version],
        )
        return SessionPrompt(version=found[0]) if found else None

    async def for_session(self, slug: str, *, user_id: UUID, role: AppRole) -> SessionPrompt:
        """The version a new session of this user runs: an experiment arm if one targets them, else the active one."""
        prompt = await self.by_slug(slug)
        if prompt.archived_at is not None:
            raise NotFound(f"prompt {slug!r} is archived")
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
                version=version,
                experiment_id=experiment.id,
                variant_id=variant_id,
                arm_values=variant.variable_values,
            )
        if prompt.active_version_id is None:
            raise NotFound(f"prompt {slug!r} has no active version")
        return SessionPrompt(version=await self.version(prompt.active_version_id))
