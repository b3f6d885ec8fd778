"""Admin: system prompts (versions, side-by-side diff, activate/rollback), experiments, users and roles, the audit trail.

Every write goes through the repositories under the admin's RLS identity;
the database refuses non-admins whatever this page shows (roles are checked in
SQL), and the page itself is refused to them.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from uuid import UUID

import pandas as pd
import panel as pn
import param
from psycopg import AsyncConnection

from dashboards.components.actions import run_on_click
from dashboards.components.audit_trail import AuditTrail
from dashboards.components.draft_check import DraftCheck
from dashboards.components.experiment_controls import experiment_controls, parse_arms
from dashboards.components.tag_vocabulary import TagVocabulary
from dashboards.context import web_context
from dashboards.session import PageSession
from workbench.db.errors import DataError
from workbench.db.models import (
    APP_ROLES,
    AppRole,
    ArmTally,
    Experiment,
    PromptVersion,
    SystemPrompt,
)
from workbench.db.repositories import ProfilesRepo, PromptsRepo
from workbench.room_options import parse_variables

DIFF_STYLE = (
    "<style>table.diff{font-family:monospace;font-size:.85rem}"
    ".diff_add{background:#c8f0c8}.diff_chg{background:#f7f0a8}.diff_sub{background:#f5c2c2}"
    ".diff_header{color:#777;padding:0 .4rem}</style>"
)


def side_by_side_diff(old: PromptVersion, new: PromptVersion) -> str:
    """An HTML table: `old` left, `new` right, changed lines marked."""
    table: str = difflib.HtmlDiff(wrapcolumn=70).make_table(
        old.body.splitlines(),
        new.body.splitlines(),
        fromdesc=f"version {old.version}",
        todesc=f"version {new.version}",
    )
    return table


class AdminPage(pn.viewable.Viewer):
    """Prompts, the selected prompt's versions and experiments, and the users; the admin's actions.

    After an action the data is read again and only the sections whose data
    changed are drawn again (the page is not rebuilt).
    """

    prompts = param.Dict(default={}, doc="slug -> prompt")
    slug = param.String(default="", doc="the prompt being edited")
    versions = param.List(default=[], doc="versions of the selected prompt, newest first")
    active_version_id = param.String(default="", doc="the selected prompt's active version")
    experiments = param.List(default=[], doc="experiments of the selected prompt")
    arms = param.List(default=[], doc="their arms, with the conversations assigned to each")
    users = param.DataFrame(default=None, doc="profiles with their roles")
    message = param.String(default="", doc="result of the last action")

    def __init__(self, session: PageSession, **params: Any) -> None:
        super().__init__(**params)
        self._session = session
        self._wanted_slug: str | None = None  # the prompt to show after the next load
        self.audit_trail = AuditTrail(session)
        self.tag_vocabulary = TagVocabulary(session)
        # True while the page itself changes the prompt list: the picker's own change
        # events are then the page's doing, not the admin's choice.
        self.updating = False

    async def load(self) -> None:
        """Everything the page shows."""
        async with self._session.as_user() as conn:
            repo = PromptsRepo(conn)
            prompts = {p.slug: p for p in await repo.all_prompts()}
            wanted, self._wanted_slug = self._wanted_slug or self.slug, None
            self.updating = True
            try:
                self.prompts = prompts
                self.slug = wanted if wanted in prompts else next(iter(sorted(prompts)), "")
            finally:
                self.updating = False
            await self._load_prompt(conn)
            profiles = await ProfilesRepo(conn).list_all()
            await self.audit_trail.load(conn)
            await self.tag_vocabulary.load(conn)
        self.users = pd.DataFrame(
            [{"id": str(p.id), "display_name": p.display_name, "role": p.role} for p in profiles],
            columns=["id", "display_name", "role"],
        )

    async def _load_prompt(self, conn: AsyncConnection[Any]) -> None:
        prompt: SystemPrompt | None = self.prompts.get(self.slug)
        if prompt is None:
            self.param.update(versions=[], experiments=[], arms=[], active_version_id="")
            return
        repo = PromptsRepo(conn)
        fresh = await repo.by_slug(self.slug)
        self.param.update(
            versions=await repo.versions(prompt.id),
            active_version_id=str(fresh.active_version_id or ""),
            experiments=await repo.experiments(prompt.id),
            arms=await repo.arm_tallies(prompt.id),
        )

    @property
    def email(self) -> str:
        """The signed-in admin's e-mail (what their simulation runs are stored as)."""
        return self._session.claims.email or ""

    def version(self, number: int) -> PromptVersion:
        """A version of the selected prompt by number."""
        versions: list[PromptVersion] = self.versions
        for version in versions:
            if version.version == number:
                return version
        raise ValueError(f"{self.slug} has no version {number}")

    async def _act(self, action: Callable[[AsyncConnection[Any]], Awaitable[str]]) -> None:
        """Run an action as the admin, read the data again, and say what happened (or why not)."""
        try:
            async with self._session.as_user() as conn:
                message = await action(conn)
        except (ValueError, DataError) as exc:
            message = f"Refused: {exc}"
        await self.load()
        self.message = message

    async def select(self, slug: str) -> None:
        """Edit another prompt."""
        self.slug = slug
        async with self._session.as_user() as conn:
            await self._load_prompt(conn)

    async def save_version(self, body: str, notes: str, defaults: str = "") -> None:
        """Store `body` as the next version (versions are immutable), with a default for each
        of its {{variables}} (`defaults`: name=value lines; user_name needs none)."""

        async def save(conn: AsyncConnection[Any]) -> str:
            if not body.strip():
                raise ValueError("a prompt version needs a body")
            version = await PromptsRepo(conn).add_version(
                self.prompts[self.slug].id, body, notes=notes, defaults=parse_variables(defaults)
            )
            return f"Saved version {version.version}."

        await self._act(save)

    async def create_prompt(self, slug: str, title: str, body: str) -> None:
        """A new system prompt with its first version, active at once."""

        async def create(conn: AsyncConnection[Any]) -> str:
            if not body.strip():
                raise ValueError("a new prompt needs the text of its first version")
            repo = PromptsRepo(conn)
            prompt = await repo.create(slug=slug.strip(), title=title.strip() or slug.strip())
            version = await repo.add_version(prompt.id, body, notes="first version")
            await repo.activate(prompt.id, version.id)
            self._wanted_slug = prompt.slug
            return f"Prompt {prompt.slug} created; version 1 is active."

        await self._act(create)

    async def archive(self) -> None:
        """Archive the selected prompt: kept with its history, offered to no one."""

        async def archive(conn: AsyncConnection[Any]) -> str:
            archived = await PromptsRepo(conn).archive(self.prompts[self.slug].id)
            return f"Prompt {archived.slug} archived."

        await self._act(archive)

    async def activate(self, number: int) -> None:
        """Make a version the active one (also how a rollback is done)."""

        async def activate(conn: AsyncConnection[Any]) -> str:
            await PromptsRepo(conn).activate(self.prompts[self.slug].id, self.version(number).id)
            return f"Version {number} is active."

        await self._act(activate)

    async def create_experiment(self, name: str, arms_text: str) -> None:
        """A draft experiment with one arm per version number (weights relative)."""

        async def create(conn: AsyncConnection[Any]) -> str:
            arms = parse_arms(arms_text)
            if len(arms) < 2:
                raise ValueError("an experiment compares at least two versions")
            repo = PromptsRepo(conn)
            experiment = await repo.create_experiment(self.prompts[self.slug].id, name=name.strip())
            for number, weight in arms.items():
                await repo.add_variant(
                    experiment.id, self.version(number).id, label=f"v{number}", weight=weight
                )
            return f"Experiment {experiment.name} created (draft)."

        await self._act(create)

    async def toggle_experiment(self, experiment: Experiment) -> None:
        """Start a draft experiment, or stop a running one."""

        async def toggle(conn: AsyncConnection[Any]) -> str:
            repo = PromptsRepo(conn)
            if experiment.status == "running":
                await repo.stop_experiment(experiment.id)
                return f"Experiment {experiment.name} stopped."
            await repo.start_experiment(experiment.id)
            return f"Experiment {experiment.name} started."

        await self._act(toggle)

    async def promote(self, experiment: Experiment, label: str) -> None:
        """Make arm `label`'s version the active one and stop the experiment, in one step.

        One transaction: both happen or neither; the database audits each
        (prompt activated, experiment stopped)."""

        async def promote(conn: AsyncConnection[Any]) -> str:
            repo = PromptsRepo(conn)
            arm = next((v for v in await repo.variants(experiment.id) if v.label == label), None)
            if arm is None:
                raise ValueError(f"experiment {experiment.name} has no arm {label!r}")
            async with conn.transaction():
                await repo.activate(experiment.prompt_id, arm.prompt_version_id)
                if experiment.status == "running":
                    await repo.stop_experiment(experiment.id)
            return f"Arm {label} of {experiment.name} promoted: its version is active."

        await self._act(promote)

    async def set_role(self, user_id: str, role: AppRole) -> None:
        """Change a user's role (SQL refuses non-admins and demoting the last admin)."""

        async def change(conn: AsyncConnection[Any]) -> str:
            await ProfilesRepo(conn).set_role(UUID(user_id.strip()), role)
            return "Role changed."

        await self._act(change)

    def __panel__(self) -> pn.viewable.Viewable:
        return admin_view(self)


def admin_view(page: AdminPage) -> pn.viewable.Viewable:
    """The page body: sections drawn from the page's data, wired to its actions."""
    prompt = pn.widgets.Select(
        name="Prompt", options=sorted(page.prompts), value=page.slug or None, width=260
    )
    prompt.param.watch(
        lambda e: (
            pn.state.execute(partial(page.select, e.new))
            if e.new != page.slug and not page.updating
            else None
        ),
        "value",
    )
    # The list follows the data (a prompt created or archived), not the other way round.
    page.param.watch(lambda e: setattr(prompt, "options", sorted(e.new)), "prompts")
    page.param.watch(lambda e: setattr(prompt, "value", e.new or None), "slug")

    archive = pn.widgets.Button(name="Archive this prompt", button_type="danger")
    run_on_click(archive, page.archive)
    new_slug = pn.widgets.TextInput(name="New prompt (slug)", placeholder="tutor", width=200)
    new_title = pn.widgets.TextInput(name="Title", width=250)
    new_body = pn.widgets.TextAreaInput(
        name="First version", height=100, sizing_mode="stretch_width"
    )
    create_prompt = pn.widgets.Button(name="Create prompt", button_type="primary")
    run_on_click(
        create_prompt,
        lambda: page.create_prompt(new_slug.value, new_title.value, new_body.value),
    )

    @pn.depends(page.param.versions, page.param.active_version_id)
    def versions_section(versions: list[PromptVersion], active: str) -> pn.viewable.Viewable:
        return _versions_section(page, versions, active)

    @pn.depends(page.param.experiments, page.param.arms)
    def experiments_section(
        experiments: list[Experiment], arms: list[ArmTally]
    ) -> pn.viewable.Viewable:
        return experiment_controls(
            experiments,
            arms,
            toggle=page.toggle_experiment,
            promote=page.promote,
            create=page.create_experiment,
        )

    @pn.depends(page.param.users)
    def users_table(users: pd.DataFrame | None) -> pn.viewable.Viewable:
        return pn.widgets.Tabulator(
            users if users is not None else pd.DataFrame(),
            disabled=True,
            show_index=False,
            name="users",
            sizing_mode="stretch_width",
        )

    user_id = pn.widgets.TextInput(name="User id", width=330)
    role = pn.widgets.Select(name="Role", options=list(APP_ROLES), width=150)
    set_role = pn.widgets.Button(name="Set role")
    run_on_click(set_role, lambda: page.set_role(user_id.value, role.value))

    @pn.depends(page.param.message)
    def message(text: str) -> pn.viewable.Viewable:
        return pn.pane.Alert(text, alert_type="info") if text else pn.Spacer(height=0)

    return pn.Column(
        message,
        pn.pane.Markdown("## System prompts"),
        pn.FlexBox(prompt, archive),
        versions_section,
        pn.FlexBox(new_slug, new_title),
        new_body,
        create_prompt,
        pn.pane.Markdown("## Experiments"),
        experiments_section,
        pn.pane.Markdown("## Users and roles"),
        users_table,
        pn.FlexBox(user_id, role, set_role),
        pn.pane.Markdown(
            "## Annotation tags\nThe words researchers tag conversations with in History."
        ),
        page.tag_vocabulary,
        pn.pane.Markdown(
            "## Audit trail\nRecorded by the database as it happens (the last 7 days unless "
            "a day is picked)."
        ),
        page.audit_trail,
        sizing_mode="stretch_width",
    )


def _versions_section(
    page: AdminPage, versions: list[PromptVersion], active: str
) -> pn.viewable.Viewable:
    editor = pn.widgets.TextAreaInput(
        name="New version",
        height=160,
        sizing_mode="stretch_width",
        value=versions[0].body if versions else "",
    )
    notes = pn.widgets.TextInput(
        name="Notes", placeholder="what changed and why", max_width=400, sizing_mode="stretch_width"
    )
    defaults = pn.widgets.TextAreaInput(
        name="Variable defaults (name=value per line; user_name is the participant's name)",
        value="\n".join(f"{k}={v}" for k, v in versions[0].variable_defaults.items())
        if versions
        else "",
        height=60,
        sizing_mode="stretch_width",
    )
    save = pn.widgets.Button(name="Save as new version", button_type="primary")
    run_on_click(save, lambda: page.save_version(editor.value, notes.value, defaults.value))
    numbers = [v.version for v in versions]
    left = pn.widgets.Select(
        name="Compare version", options=numbers, value=numbers[-1] if numbers else None, width=150
    )
    right = pn.widgets.Select(
        name="with version", options=numbers, value=numbers[0] if numbers else None, width=150
    )
    to_activate = pn.widgets.Select(name="Version to activate", options=numbers, width=170)
    activate = pn.widgets.Button(name="Activate", button_type="warning")
    run_on_click(activate, lambda: page.activate(to_activate.value))

    @pn.depends(left.param.value, right.param.value)
    def diff(a: int | None, b: int | None) -> pn.viewable.Viewable:
        if a is None or b is None:
            return pn.pane.Markdown("*No versions yet.*")
        return pn.pane.HTML(
            DIFF_STYLE + side_by_side_diff(page.version(a), page.version(b)),
            name="diff",
            # long lines scroll sideways in their own box, not the page
            sizing_mode="stretch_width",
            styles={"overflow-x": "auto"},
        )

    table = pn.widgets.Tabulator(
        pd.DataFrame(
            [
                {
                    "version": v.version,
                    "active": str(v.id) == active,
                    "notes": v.notes,
                    "variables": ", ".join(v.variables),
                    "created_at": v.created_at,
                }
                for v in versions
            ],
            columns=["version", "active", "notes", "variables", "created_at"],
        ),
        disabled=True,
        show_index=False,
        name="versions",
        sizing_mode="stretch_width",
    )
    active_number = next((v.version for v in versions if str(v.id) == active), None)
    check = DraftCheck(
        slug=page.slug,
        active=active_number,
        versions=numbers,
        email=page.email,
        data_dir=web_context().settings.data_dir,
    )
    return pn.Column(
        table,
        pn.FlexBox(to_activate, activate),
        editor,
        defaults,
        pn.FlexBox(notes, save),
        pn.pane.Markdown("### Compare versions"),
        pn.FlexBox(left, right),
        diff,
        check,
        sizing_mode="stretch_width",
    )
