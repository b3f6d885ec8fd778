"""Admin: system prompts (versions, side-by-side diff, activate/rollback), experiments, users and roles.

Every write goes through the repositories under the admin's RLS identity;
the database refuses non-admins whatever this page shows (roles are checked in
SQL), and the page itself is refused to them.
"""

from __future__ import annotations

import difflib
from functools import partial
from typing import Any
from uuid import UUID

import pandas as pd
import panel as pn
import param
from psycopg import AsyncConnection

from dashboards.text import markdown_text
from workbench.db.models import AppRole, Experiment, PromptVersion, SystemPrompt
from workbench.db.repositories import ProfilesRepo, PromptsRepo

ROLES: tuple[AppRole, ...] = ("user", "researcher", "admin")
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


class AdminStore(param.Parameterized):
    """Prompts, the selected prompt's versions and experiments, and the users."""

    prompts = param.Dict(default={}, doc="slug -> prompt")
    slug = param.String(default="", doc="the prompt being edited")
    versions = param.List(default=[], doc="versions of the selected prompt, newest first")
    active_version_id = param.String(default="", doc="the selected prompt's active version")
    experiments = param.List(default=[], doc="experiments of the selected prompt")
    users = param.DataFrame(default=None, doc="profiles with their roles")
    message = param.String(default="", doc="result of the last action")

    async def load(self, conn: AsyncConnection[Any]) -> None:
        """Everything the page shows."""
        repo = PromptsRepo(conn)
        prompts = {p.slug: p for p in await repo.all_prompts()}
        self.prompts = prompts
        if self.slug not in prompts:
            self.slug = next(iter(sorted(prompts)), "")
        await self.load_prompt(conn)
        profiles = await ProfilesRepo(conn).list_all()
        self.users = pd.DataFrame(
            [{"id": str(p.id), "display_name": p.display_name, "role": p.role} for p in profiles],
            columns=["id", "display_name", "role"],
        )

    async def load_prompt(self, conn: AsyncConnection[Any]) -> None:
        """Versions and experiments of the selected prompt."""
        prompt: SystemPrompt | None = self.prompts.get(self.slug)
        if prompt is None:
            self.param.update(versions=[], experiments=[], active_version_id="")
            return
        repo = PromptsRepo(conn)
        fresh = await repo.by_slug(self.slug)
        self.param.update(
            versions=await repo.versions(prompt.id),
            active_version_id=str(fresh.active_version_id or ""),
            experiments=await repo.experiments(prompt.id),
        )

    def version(self, number: int) -> PromptVersion:
        """A version of the selected prompt by number."""
        versions: list[PromptVersion] = self.versions
        for version in versions:
            if version.version == number:
                return version
        raise ValueError(f"{self.slug} has no version {number}")

    async def save_version(
        self, conn: AsyncConnection[Any], body: str, notes: str
    ) -> PromptVersion:
        """Store `body` as the next version (versions are immutable)."""
        if not body.strip():
            raise ValueError("a prompt version needs a body")
        prompt = self.prompts[self.slug]
        return await PromptsRepo(conn).add_version(prompt.id, body, notes=notes)

    async def activate(self, conn: AsyncConnection[Any], number: int) -> None:
        """Make a version the active one (also how a rollback is done)."""
        await PromptsRepo(conn).activate(self.prompts[self.slug].id, self.version(number).id)

    async def create_experiment(
        self, conn: AsyncConnection[Any], name: str, arms: dict[int, float]
    ) -> Experiment:
        """A draft experiment with one arm per version number (weights relative)."""
        if len(arms) < 2:
            raise ValueError("an experiment compares at least two versions")
        repo = PromptsRepo(conn)
        experiment = await repo.create_experiment(self.prompts[self.slug].id, name=name)
        for number, weight in arms.items():
            await repo.add_variant(
                experiment.id, self.version(number).id, label=f"v{number}", weight=weight
            )
        return experiment

    async def set_role(self, conn: AsyncConnection[Any], user_id: str, role: AppRole) -> None:
        """Change a user's role (SQL refuses non-admins and demoting the last admin)."""
        await ProfilesRepo(conn).set_role(UUID(user_id), role)


def admin_view(store: AdminStore, act: Any) -> pn.viewable.Viewable:
    """The page body; `act(name, **kwargs)` runs a store action as the admin and reloads."""
    prompt = pn.widgets.Select(
        name="Prompt", options=sorted(store.prompts), value=store.slug or None, width=260
    )
    prompt.param.watch(lambda e: pn.state.execute(partial(act, "select", slug=e.new)), "value")
    editor = pn.widgets.TextAreaInput(
        name="New version",
        height=160,
        sizing_mode="stretch_width",
        value=store.versions[0].body if store.versions else "",
    )
    notes = pn.widgets.TextInput(name="Notes", placeholder="what changed and why", width=400)
    save = pn.widgets.Button(name="Save as new version", button_type="primary")
    save.on_click(
        lambda _e: pn.state.execute(partial(act, "save", body=editor.value, notes=notes.value))
    )
    numbers = [v.version for v in store.versions]
    left = pn.widgets.Select(
        name="Compare version", options=numbers, value=numbers[-1] if numbers else None, width=150
    )
    right = pn.widgets.Select(
        name="with version", options=numbers, value=numbers[0] if numbers else None, width=150
    )
    to_activate = pn.widgets.Select(name="Version to activate", options=numbers, width=170)
    activate = pn.widgets.Button(name="Activate", button_type="warning")
    activate.on_click(
        lambda _e: pn.state.execute(partial(act, "activate", number=to_activate.value))
    )

    @pn.depends(left.param.value, right.param.value)
    def diff(a: int | None, b: int | None) -> pn.viewable.Viewable:
        if a is None or b is None:
            return pn.pane.Markdown("*No versions yet.*")
        return pn.pane.HTML(
            DIFF_STYLE + side_by_side_diff(store.version(a), store.version(b)), name="diff"
        )

    versions = pn.widgets.Tabulator(
        pd.DataFrame(
            [
                {
                    "version": v.version,
                    "active": str(v.id) == store.active_version_id,
                    "notes": v.notes,
                    "variables": ", ".join(v.variables),
                    "created_at": v.created_at,
                }
                for v in store.versions
            ],
            columns=["version", "active", "notes", "variables", "created_at"],
        ),
        disabled=True,
        show_index=False,
        name="versions",
    )
    experiment_name = pn.widgets.TextInput(name="Experiment name", width=250)
    arms = pn.widgets.TextInput(
        name="Arms (version:weight, ...)", placeholder="1:3, 2:1", width=250
    )
    create = pn.widgets.Button(name="Create experiment")
    create.on_click(
        lambda _e: pn.state.execute(
            partial(act, "experiment", name=experiment_name.value, arms=arms.value)
        )
    )
    experiment_rows = []
    for experiment in store.experiments:
        label = "Stop" if experiment.status == "running" else "Start"
        button = pn.widgets.Button(
            name=f"{label} {experiment.name}", disabled=experiment.status == "stopped"
        )
        button.on_click(
            lambda _e, x=experiment: pn.state.execute(
                partial(act, "toggle", experiment_id=x.id, status=x.status)
            )
        )
        experiment_rows.append(
            pn.Row(
                pn.pane.Markdown(f"**{markdown_text(experiment.name)}**: {experiment.status}"),
                button,
            )
        )
    users = pn.widgets.Tabulator(
        store.users if store.users is not None else pd.DataFrame(),
        disabled=True,
        show_index=False,
        name="users",
    )
    user_id = pn.widgets.TextInput(name="User id", width=330)
    role = pn.widgets.Select(name="Role", options=list(ROLES), width=150)
    set_role = pn.widgets.Button(name="Set role")
    set_role.on_click(
        lambda _e: pn.state.execute(partial(act, "role", user_id=user_id.value, role=role.value))
    )

    @pn.depends(store.param.message)
    def message(text: str) -> pn.viewable.Viewable:
        return pn.pane.Alert(text, alert_type="info") if text else pn.Spacer(height=0)

    return pn.Column(
        message,
        pn.pane.Markdown("## System prompts"),
        prompt,
        versions,
        pn.Row(to_activate, activate),
        editor,
        pn.Row(notes, save),
        pn.pane.Markdown("### Compare versions"),
        pn.Row(left, right),
        diff,
        pn.pane.Markdown("## Experiments"),
        *experiment_rows,
        pn.Row(experiment_name, arms, create),
        pn.pane.Markdown("## Users and roles"),
        users,
        pn.Row(user_id, role, set_role),
        sizing_mode="stretch_width",
    )


def parse_arms(text: str) -> dict[int, float]:
    """ "1:3, 2:1" -> {1: 3.0, 2: 1.0}; a clear error otherwise."""
    arms: dict[int, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        number, _, weight = part.partition(":")
        try:
            arms[int(number)] = float(weight or 1)
        except ValueError:
            raise ValueError(f"arm {part!r}: write version:weight, e.g. 1:3") from None
        if arms[int(number)] <= 0:
            raise ValueError(f"arm {part!r}: weights are positive")
    return arms
