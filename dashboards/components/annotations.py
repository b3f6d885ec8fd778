"""Annotating a conversation in History: researchers' tags, 1-5 ratings and notes, per turn or whole."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pandas as pd
import panel as pn
import param

from dashboards.components.actions import run_on_click
from dashboards.session import PageSession
from dashboards.text import markdown_text
from workbench.db.errors import DataError
from workbench.db.repositories import AnnotationsRepo
from workbench.db.repositories.annotations import Annotation

WHOLE = "The whole conversation"
NO_RATING = "no rating"


class AnnotationPanel(pn.viewable.Viewer):
    """The shown conversation's annotations, and a form for the researcher's own."""

    conversation_id = param.String(default="", doc="the conversation shown")
    annotations = param.List(default=[], doc="its annotations (every researcher's)")
    vocabulary = param.List(default=[], doc="tag names to choose from")
    message = param.String(default="", doc="result of the last save")

    def __init__(self, session: PageSession, **params: Any) -> None:
        super().__init__(**params)
        self._session = session
        self._targets: dict[str, int | None] = {WHOLE: None}

    async def show(self, conversation_id: str, turns: pd.DataFrame) -> None:
        """Read the conversation's annotations and the vocabulary; offer its turns as targets."""
        self._targets = {WHOLE: None} | {
            f"Turn {int(t.idx)} ({t.role}): {str(t.text)[:50]}": int(t.id)
            for t in turns.itertuples()
        }
        async with self._session.as_user() as conn:
            repo = AnnotationsRepo(conn)
            self.vocabulary = [t.name for t in await repo.tags()]
            self.annotations = await repo.of_conversation(UUID(conversation_id))
        self.message = ""
        self.conversation_id = conversation_id

    async def save(self, target: str, rating: str, note: str, tags: list[str]) -> None:
        """Store the researcher's annotation of `target` (replacing their earlier one)."""
        try:
            async with self._session.as_user() as conn:
                repo = AnnotationsRepo(conn)
                await repo.save(
                    UUID(self.conversation_id),
                    turn_id=self._targets[target],
                    rating=None if rating == NO_RATING else int(rating),
                    note=note,
                    tags=tags,
                )
                self.annotations = await repo.of_conversation(UUID(self.conversation_id))
        except DataError as exc:
            self.message = f"Refused: {exc}"
            return
        self.message = "Annotation saved."

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.bind(self._view, self.param.conversation_id, self.param.vocabulary)

    def _view(self, conversation_id: str, vocabulary: list[str]) -> pn.viewable.Viewable:
        if not conversation_id:
            return pn.Spacer(height=0)
        target = pn.widgets.Select(
            name="Annotate", options=list(self._targets), max_width=420, sizing_mode="stretch_width"
        )
        rating = pn.widgets.RadioButtonGroup(
            name="Rating", options=[NO_RATING, "1", "2", "3", "4", "5"], value=NO_RATING
        )
        tags = pn.widgets.CheckButtonGroup(name="Tags", options=vocabulary, value=[])
        note = pn.widgets.TextAreaInput(name="Note", height=70, sizing_mode="stretch_width")
        save = pn.widgets.Button(name="Save annotation", button_type="primary")
        run_on_click(save, lambda: self.save(target.value, rating.value, note.value, tags.value))

        @pn.depends(self.param.annotations, self.param.message)
        def listed(annotations: list[Annotation], message: str) -> pn.viewable.Viewable:
            shown = pn.pane.Markdown(annotations_markdown(annotations, self._session.user_id))
            if not message:
                return shown
            alert = "warning" if message.startswith("Refused") else "info"
            return pn.Column(pn.pane.Alert(message, alert_type=alert), shown)

        return pn.Column(
            pn.pane.Markdown("## Annotations"),
            listed,
            target,
            rating,
            tags,
            note,
            save,
            sizing_mode="stretch_width",
        )


def annotations_markdown(annotations: list[Annotation], me: UUID) -> str:
    """One line per annotation: what, who, the rating, tags and note."""
    if not annotations:
        return "*Not annotated yet.*"
    lines = []
    for a in annotations:
        what = "Conversation" if a.turn_idx is None else f"Turn {a.turn_idx}"
        who = "you" if a.author_id == me else f"researcher {a.author_id.hex[:8]}"
        rated = f"{a.rating}/5" if a.rating else "unrated"
        tags = ", ".join(f"`{t}`" for t in a.tags)
        note = f" — {markdown_text(a.note)}" if a.note else ""
        lines.append(f"- **{what}** by {who}: {rated} {tags}{note}".rstrip())
    return "\n".join(lines)
