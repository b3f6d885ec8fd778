"""Home: the signed-in person's recent conversations and their latency, what the agent runs now, one Start.

Researchers and admins also see each prompt's active version and any running
experiment (RLS shows prompts to them only).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn
import param

from dashboards.session import PageSession
from workbench.db.repositories import AnalyticsRepo, ConversationsRepo, ProfilesRepo, PromptsRepo

RECENT = 8
RECENT_COLUMNS = ["started", "status", "stack", "agent replies", "voice to voice p50 (s)"]


class HomePage(pn.viewable.Viewer):
    """What a researcher opens every day."""

    recent = param.DataFrame(default=None, doc="the user's latest conversations")
    prompts = param.List(default=[], doc="'slug: active vN, experiment ... running' lines")

    def __init__(self, session: PageSession, **params: Any) -> None:
        super().__init__(**params)
        self._session = session

    async def load(self) -> None:
        """The user's recent conversations (with latency) and, for researchers, the prompts in use."""
        async with self._session.as_user() as conn:
            conversations = await ConversationsRepo(conn).recent(
                limit=RECENT, owner_id=self._session.user_id
            )
            latency = await AnalyticsRepo(conn).conversation_latency([c.id for c in conversations])
            researcher = await ProfilesRepo(conn).is_researcher()
            lines = await _prompt_lines(PromptsRepo(conn)) if researcher else []
        self.recent = pd.DataFrame(
            [
                {
                    "started": c.started_at.strftime("%Y-%m-%d %H:%M"),
                    "status": c.status,
                    "stack": c.model_specs.get("name", "—"),
                    "agent replies": latency.get(c.id, {}).get("turns", 0),
                    "voice to voice p50 (s)": _seconds(latency.get(c.id, {}).get("v2v_p50_s")),
                }
                for c in conversations
            ],
            columns=RECENT_COLUMNS,
        )
        self.prompts = lines

    def __panel__(self) -> pn.viewable.Viewable:
        return home_view(self)


async def _prompt_lines(repo: PromptsRepo) -> list[str]:
    lines = []
    for prompt in await repo.all_prompts():
        versions = {v.id: v.version for v in await repo.versions(prompt.id)}
        active = versions.get(prompt.active_version_id) if prompt.active_version_id else None
        running = [e.name for e in await repo.experiments(prompt.id) if e.status == "running"]
        line = f"**{prompt.slug}**: " + (
            f"version {active} active" if active else "no active version"
        )
        if running:
            line += " · experiment " + ", ".join(f"*{name}*" for name in running) + " running"
        lines.append(line)
    return lines


def _seconds(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "—"


def home_view(page: HomePage) -> pn.viewable.Viewable:
    """Start first; then the recent conversations (or what to do when there are none)."""
    start = pn.widgets.Button(name="Start a conversation", button_type="primary", width=220)
    start.js_on_click(
        code="window.location.href = '/conversation' + window.location.search"
    )  # keeps ?theme=

    @pn.depends(page.param.recent)
    def recent(frame: pd.DataFrame | None) -> pn.viewable.Viewable:
        if frame is None or frame.empty:
            return pn.pane.Markdown(
                "No conversations yet. Press **Start a conversation**, allow the microphone, "
                "and say hello: the agent answers, and every turn is recorded with its latency."
            )
        return pn.Column(
            pn.widgets.Tabulator(
                frame, disabled=True, show_index=False, name="recent", sizing_mode="stretch_width"
            ),
            pn.pane.Markdown("[All conversations, turn by turn, with audio →](/history)"),
        )

    @pn.depends(page.param.prompts)
    def prompts(lines: list[str]) -> pn.viewable.Viewable:
        if not lines:
            return pn.Spacer(height=0)
        body = "\n".join(f"- {line}" for line in lines)
        return pn.pane.Markdown(
            f"## What new conversations get\n\n{body}\n\n[Compare prompts and arms →](/analytics)"
        )

    return pn.Column(
        pn.pane.Markdown(
            "# Voice Workbench\n\nTalk to the agent, then study every turn: latency by stage, "
            "transcripts you can correct into references, evals and A/B tests."
        ),
        start,
        pn.pane.Markdown("## Your recent conversations"),
        recent,
        prompts,
        sizing_mode="stretch_width",
    )
