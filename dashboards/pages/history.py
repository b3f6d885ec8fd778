"""History: conversations, turn by turn with latency and audio, and exports.

Users see their own conversations; researchers and admins every participant's
(simulated callers' calls too), as RLS lets them read: a list filtered,
searched, sorted and paged in the database (`SessionsRepo.browse`), the chosen
conversation's turns with their audio, transcript corrections and exports.
"""

from __future__ import annotations

import html
import logging
from functools import partial
from typing import Any, get_args
from uuid import UUID

import pandas as pd
import panel as pn
import param
from psycopg import AsyncConnection
from pydantic import ValidationError

from dashboards.components.actions import run_on_click
from dashboards.components.annotations import AnnotationPanel
from dashboards.context import web_context
from dashboards.files import file_url
from dashboards.session import PageSession
from dashboards.text import markdown_text
from workbench.db.errors import DataError, LimitReached
from workbench.db.models import ConversationStatus
from workbench.db.repositories import AnnotationsRepo, ConversationsRepo, ExportsRepo, ProfilesRepo
from workbench.db.repositories.sessions import SessionPage, SessionQuery, SessionsRepo, Sort
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


# The list's columns, in the order shown (`SessionRow` fields).
LIST_COLUMNS = ["started_at", "participant", "status", "turns", "prompt", "stack", "arm"]
RESEARCH_COLUMNS = ["simulated", "passed", "corrections", "rating", "tags"]


class SessionFilters(param.Parameterized):
    """What the History list shows; each filter narrows what RLS lets the user read."""

    text = param.String(default="", label="Words said", doc="in any turn or its correction")
    since = param.CalendarDate(default=None, allow_None=True, label="From")
    until = param.CalendarDate(default=None, allow_None=True, label="To")
    corrected_only = param.Boolean(default=False, label="Corrected transcripts only")
    sort = param.Selector(objects=list(get_args(Sort)), default="newest", label="Order")
    # Researchers and admins browse every participant's conversations with these too.
    participant = param.String(default="", doc="the start of an id (admins: or a display name)")
    kind = param.Selector(objects=["all", "human", "simulated"], default="all", label="Callers")
    prompt = param.String(default="", label="Prompt (slug)")
    stack = param.String(default="", label="Stack")
    arm = param.String(default="", label="Experiment arm")
    status = param.Selector(objects=["any", *get_args(ConversationStatus)], default="any")
    tag = param.Selector(objects=["any"], default="any", doc="annotated with this tag")
    max_rating = param.Selector(
        objects=["any", 1, 2, 3, 4, 5], default="any", label="Rated at most"
    )

    EVERYONE = ("participant", "kind", "prompt", "stack", "arm", "status", "tag", "max_rating")

    def query(self, *, page: int, owner_id: UUID | None) -> SessionQuery:
        """The database query; raises ValidationError for a value out of bounds."""
        return SessionQuery(
            owner_id=owner_id,
            text=self.text,
            since=self.since,
            until=self.until,
            corrected_only=self.corrected_only,
            sort=self.sort,
            participant=self.participant,
            kind=self.kind,
            prompt=self.prompt,
            stack=self.stack,
            arm=self.arm,
            status=None if self.status == "any" else self.status,
            tag="" if self.tag == "any" else self.tag,
            max_rating=None if self.max_rating == "any" else self.max_rating,
            page=page,
        )


class HistoryPage(pn.viewable.Viewer):
    """A page of conversations, the selected one's turns, and the user's exports."""

    everyone = param.Boolean(default=False, doc="a researcher or admin: every participant's")
    listing = param.ClassSelector(class_=SessionPage, default=None, doc="the list's current page")
    conversations = param.Dict(default={}, doc="label -> conversation id, the listed page")
    selected = param.String(default="", doc="selected conversation id")
    turns = param.DataFrame(default=None, doc="turns of the selected conversation")
    exports = param.List(default=[], doc="[{format, status, path, error, created_at}] newest first")
    message = param.String(default="", doc="result of the last correction or search")
    export_refused = param.String(default="", doc="why the last export was not made, if it was not")

    def __init__(self, session: PageSession, **params: Any) -> None:
        super().__init__(**params)
        self._session = session
        self.filters = SessionFilters()
        self.annotation_panel = AnnotationPanel(session)
        self.filters.param.watch(
            lambda _e: pn.state.execute(self.search),
            [name for name in self.filters.param if name != "name"],
        )

    async def load(self) -> None:
        """The first page of conversations, and the user's exports."""
        async with self._session.as_user() as conn:
            self.everyone = await ProfilesRepo(conn).is_researcher()
            if self.everyone:
                tags = [t.name for t in await AnnotationsRepo(conn).tags()]
                self.filters.param.tag.objects = ["any", *tags]
            await self._load_exports(conn)
        await self.search()

    async def search(self, page: int = 0) -> None:
        """List page `page` of what the filters select (a value out of bounds is said, not raised)."""
        try:
            query = self.filters.query(
                page=page, owner_id=None if self.everyone else self._session.user_id
            )
        except ValidationError as exc:
            self.message = "Refused: " + "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            return
        async with self._session.as_user() as conn:
            self.listing = await SessionsRepo(conn).browse(query)
        self.conversations = {
            f"{r.started_at:%Y-%m-%d %H:%M} · {r.status} · {r.participant} · {r.id.hex[:8]}": str(
                r.id
            )
            for r in self.listing.rows
        }

    @property
    def selected_is_own(self) -> bool:
        """The selected conversation is the signed-in user's (theirs to correct)."""
        listed = {str(r.id): r.owner_id for r in self.listing.rows} if self.listing else {}
        return listed.get(self.selected) == self._session.user_id

    async def turn_page(self, step: int) -> None:
        """The previous (-1) or next (+1) page of the list."""
        if self.listing is not None:
            await self.search(min(max(self.listing.query.page + step, 0), self.listing.pages - 1))

    async def select(self) -> None:
        """Load the turns of the selected conversation."""
        if not self.selected:
            self.turns = pd.DataFrame(columns=TURN_COLUMNS)
            return
        async with self._session.as_user() as conn:
            turns = await ConversationsRepo(conn).turns(UUID(self.selected))
        self.turns = pd.DataFrame([t.model_dump() for t in turns], columns=TURN_COLUMNS)
        if self.everyone:
            await self.annotation_panel.show(self.selected, self.turns)

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
        name="Conversation", max_width=420, sizing_mode="stretch_width", options={"(choose)": ""}
    )

    def offer(conversations: dict[str, str]) -> None:
        picker.options = {"(choose)": "", **conversations}

    offer(page.conversations)
    page.param.watch(lambda e: offer(e.new), "conversations")
    picker.link(page, value="selected")
    page.param.watch(lambda _e: pn.state.execute(page.select), "selected")
    buttons = []
    for fmt in ("json", "csv", "parquet"):
        button = pn.widgets.Button(name=f"Export {fmt.upper()}", width=130)
        run_on_click(button, partial(page.export, fmt))
        buttons.append(button)

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
        _filters_section(page),
        pn.bind(_list_section, page, page.param.listing),
        picker,
        message,
        pn.bind(_turns_section, page, page.param.turns),
        page.annotation_panel if page.everyone else pn.Spacer(height=0),
        pn.pane.Markdown("## Export"),
        pn.FlexBox(*buttons),
        exports_section,
        sizing_mode="stretch_width",
    )


def _filters_section(page: HistoryPage) -> pn.viewable.Viewable:
    """The list's filters: words, dates and order for everyone; who, what and how for researchers."""
    filters = page.filters
    shown = ["text", "since", "until", "corrected_only", "sort"]
    if page.everyone:
        shown += list(SessionFilters.EVERYONE)
    widgets: dict[str, Any] = {
        "text": {"type": pn.widgets.TextInput, "placeholder": "words said in the conversation"},
        "participant": {"type": pn.widgets.TextInput, "placeholder": "name or id"},
        "kind": pn.widgets.RadioButtonGroup,
    }
    return pn.Param(
        filters,
        parameters=shown,
        widgets={name: spec for name, spec in widgets.items() if name in shown},
        show_name=False,
        default_layout=pn.FlexBox,
        sizing_mode="stretch_width",
        name="filters",
    )


def _list_section(page: HistoryPage, listing: SessionPage | None) -> pn.viewable.Viewable:
    """The listed page of conversations, where it is in the whole, and paging buttons."""
    if listing is None:
        return pn.Spacer(height=0)
    if not listing.rows:
        if listing.total == 0 and listing.query == SessionQuery(owner_id=listing.query.owner_id):
            return pn.pane.Markdown(
                "*No conversations yet.* [Start one](/conversation): every turn you and "
                "the agent say is recorded here, with its latency and audio."
            )
        return pn.pane.Markdown("*No conversation matches these filters.*")
    columns = LIST_COLUMNS + (RESEARCH_COLUMNS if page.everyone else [])
    table = pd.DataFrame([r.model_dump() for r in listing.rows], columns=["id", *columns])
    table["id"] = table["id"].map(lambda value: value.hex[:8])
    earlier = pn.widgets.Button(name="◀ Previous page", width=140)
    later = pn.widgets.Button(name="Next page ▶", width=140)
    earlier.disabled = listing.query.page == 0
    later.disabled = listing.query.page >= listing.pages - 1
    run_on_click(earlier, partial(page.turn_page, -1))
    run_on_click(later, partial(page.turn_page, 1))
    where = pn.pane.Markdown(
        f"Page {listing.query.page + 1} of {listing.pages} · {listing.total} conversations",
        name="list position",
    )
    return pn.Column(
        pn.widgets.Tabulator(
            table,
            disabled=True,
            show_index=False,
            name="conversations",
            sizing_mode="stretch_width",
        ),
        pn.FlexBox(earlier, where, later),
        sizing_mode="stretch_width",
    )


def _turns_section(page: HistoryPage, turns: pd.DataFrame | None) -> pn.viewable.Viewable:
    """The selected conversation's turns, their audio, and the correction form."""
    if turns is None or turns.empty:
        return pn.pane.Markdown("*Choose a conversation to see its turns.*")
    shown = turns.drop(columns=["id", "audio_path"])
    # Which text the ASR eval scores this turn against.
    shown.insert(4, "reference", turns["reference_text"].map(lambda r: "human" if r else "live"))
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
    correction = _correction_form(page, turns) if page.selected_is_own else pn.Spacer(height=0)
    return pn.Column(table, *players, correction)


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
