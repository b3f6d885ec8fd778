"""History: the user's own conversations, turn by turn with latency and audio, and exports.

Reads under the user's RLS identity and keeps to their own conversations
(researchers may see everyone's, but history is personal; analytics is the
place for everyone's numbers).
"""

from __future__ import annotations

import html
import logging
from functools import partial
from typing import Any
from uuid import UUID

import pandas as pd
import panel as pn
import param
from psycopg import AsyncConnection

from dashboards.components.actions import run_on_click
from dashboards.context import web_context
from dashboards.files import file_url
from dashboards.session import PageSession
from dashboards.text import markdown_text
from workbench.db.errors import DataError, LimitReached
from workbench.db.repositories import ConversationsRepo, ExportsRepo
from workbench.exports import Format, export_conversations
from workbench.latency_stages import FIELDS as LATENCY_FIELDS
from workbench.storage import open_store

log = logging.getLogger("workbench.web.history")

TURN_COLUMNS = [
    "id",
    "idx",
    "role",
    "text",
    "reference_text",
    "reference_at",
    *LATENCY_FIELDS,
    "interrupted",
    "audio_path",
]


class HistoryPage(pn.viewable.Viewer):
    """The user's conversations, the selected one's turns, and their exports."""

    conversations = param.Dict(default={}, doc="label -> conversation id, newest first")
    selected = param.String(default="", doc="selected conversation id")
    turns = param.DataFrame(default=None, doc="turns of the selected conversation")
    exports = param.List(default=[], doc="[{format, status, path, error, created_at}] newest first")
    message = param.String(default="", doc="result of the last correction")
    export_refused = param.String(default="", doc="why the last export was not made, if it was not")

    def __init__(self, session: PageSession, **params: Any) -> None:
        super().__init__(**params)
        self._session = session

    async def load(self) -> None:
        """The user's own conversations and exports."""
        async with self._session.as_user() as conn:
            mine = await ConversationsRepo(conn).recent(limit=200, owner_id=self._session.user_id)
            self.conversations = {
                f"{c.started_at:%Y-%m-%d %H:%M} · {c.status} · {c.id.hex[:8]}": str(c.id)
                for c in mine
            }
            await self._load_exports(conn)

    async def select(self) -> None:
        """Load the turns of the selected conversation."""
        if not self.selected:
            self.turns = pd.DataFrame(columns=TURN_COLUMNS)
            return
        async with self._session.as_user() as conn:
            turns = await ConversationsRepo(conn).turns(UUID(self.selected))
        self.turns = pd.DataFrame([t.model_dump() for t in turns], columns=TURN_COLUMNS)

    async def correct(self, turn_id: int, text: str) -> None:
        """Store a correction of a turn's transcript as its reference for evals (empty clears it)."""
        try:
            async with self._session.as_user() as conn:
                await ConversationsRepo(conn).correct_transcript(turn_id, text)
        except DataError as exc:
            self.message = f"Refused: {exc}"
            return
        self.message = (
            "Correction saved as the turn's reference." if text.strip() else "Correction cleared."
        )
        await self.select()

    async def export(self, fmt: Format) -> None:
        """Export the selected conversation (or all of the user's) as `fmt`; the list shows the outcome."""
        context = web_context()
        self.export_refused = ""
        async with context.page_connection() as conn:
            try:
                await export_conversations(
                    conn,
                    open_store(context.settings),
                    self._session.claims,
                    fmt=fmt,
                    conversation_id=UUID(self.selected) if self.selected else None,
                )
            except LimitReached as exc:  # too many an hour, or too large: say so here
                self.export_refused = f"Not exported: {exc}."
            except Exception:  # the export row records why; the list below shows it
                log.exception("export failed")
        async with self._session.as_user() as conn:
            await self._load_exports(conn)

    async def _load_exports(self, conn: AsyncConnection[Any]) -> None:
        self.exports = [
            {
                "format": e.format,
                "status": e.status,
                "path": e.object_path,
                "error": e.error,
                "created_at": e.created_at,
            }
            for e in await ExportsRepo(conn).mine()
        ]

    def __panel__(self) -> pn.viewable.Viewable:
        return history_view(self)


def exports_markdown(exports: list[dict[str, Any]]) -> str:
    """Download links of finished exports, reasons of failed ones."""
    if not exports:
        return "*No exports yet.*"
    lines = []
    for e in exports[:10]:
        when = f"{e['created_at']:%Y-%m-%d %H:%M}"
        if e["status"] == "ready" and e["path"]:
            lines.append(
                f"- {when} {e['format'].upper()}: [download]({file_url('exports', e['path'])})"
            )
        else:
            lines.append(
                f"- {when} {e['format'].upper()}: {e['status']} {markdown_text(e['error'] or '')}".rstrip()
            )
    return "\n".join(lines)


def history_view(page: HistoryPage) -> pn.viewable.Viewable:
    """The page body, wired to the page's actions."""
    picker = pn.widgets.Select(
        name="Conversation",
        options={"(choose)": "", **page.conversations},
        max_width=420,
        sizing_mode="stretch_width",
    )
    picker.link(page, value="selected")
    page.param.watch(lambda _e: pn.state.execute(page.select), "selected")
    buttons = []
    for fmt in ("json", "csv", "parquet"):
        button = pn.widgets.Button(name=f"Export {fmt.upper()}", width=130)
        run_on_click(button, partial(page.export, fmt))
        buttons.append(button)

    @pn.depends(page.param.turns)
    def turns_section(turns: pd.DataFrame | None) -> pn.viewable.Viewable:
        if turns is None or turns.empty:
            if not page.conversations:  # nothing recorded yet: say where conversations come from
                return pn.pane.Markdown(
                    "*No conversations yet.* [Start one](/conversation): every turn you and "
                    "the agent say is recorded here, with its latency and audio."
                )
            return pn.pane.Markdown("*Choose a conversation to see its turns.*")
        shown = turns.drop(columns=["id", "audio_path"])
        # Which text the ASR eval scores this turn against.
        shown.insert(
            4, "reference", turns["reference_text"].map(lambda r: "human" if r else "live")
        )
        table = pn.widgets.Tabulator(
            shown,
            disabled=True,
            show_index=False,
            pagination="local",
            page_size=20,
            name="turns",
            sizing_mode="stretch_width",
        )
        players = [
            pn.pane.HTML(
                f"<div>Turn {int(row.idx)} ({html.escape(row.role)}): "
                f'<audio controls preload="none" src="{html.escape(file_url("audio", row.audio_path))}"></audio></div>'
            )
            for row in turns.itertuples()
            if isinstance(row.audio_path, str) and row.audio_path
        ]
        return pn.Column(table, *players, _correction_form(page, turns))

    @pn.depends(page.param.message)
    def message(text: str) -> pn.viewable.Viewable:
        return pn.pane.Alert(text, alert_type="info") if text else pn.Spacer(height=0)

    @pn.depends(page.param.exports, page.param.export_refused)
    def exports_section(exports: list[dict[str, Any]], refused: str) -> pn.viewable.Viewable:
        listed = pn.pane.Markdown(exports_markdown(exports), name="exports")
        if not refused:
            return listed
        return pn.Column(pn.pane.Alert(refused, alert_type="warning"), listed)

    return pn.Column(
        picker,
        message,
        turns_section,
        pn.pane.Markdown("## Export"),
        pn.FlexBox(*buttons),
        exports_section,
        sizing_mode="stretch_width",
    )


def _correction_form(page: HistoryPage, turns: pd.DataFrame) -> pn.viewable.Viewable:
    """Correct what the agent heard in a user turn; the correction becomes its ASR reference."""
    heard = turns[turns["role"] == "user"]
    if heard.empty:
        return pn.Spacer(height=0)
    options = {f"Turn {int(t.idx)} (user)": int(t.id) for t in heard.itertuples()}
    texts = {
        int(t.id): str(t.reference_text) if isinstance(t.reference_text, str) else str(t.text)
        for t in heard.itertuples()
    }
    turn = pn.widgets.Select(
        name="Turn to correct", options=options, max_width=420, sizing_mode="stretch_width"
    )
    text = pn.widgets.TextAreaInput(
        name="Corrected transcript", value=texts[turn.value], height=80, sizing_mode="stretch_width"
    )
    turn.param.watch(lambda e: setattr(text, "value", texts[e.new]), "value")
    save = pn.widgets.Button(name="Save correction", button_type="primary")
    run_on_click(save, lambda: page.correct(turn.value, text.value))
    return pn.Column(pn.pane.Markdown("## Correct a transcript"), turn, text, save)
