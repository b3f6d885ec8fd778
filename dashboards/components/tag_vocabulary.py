"""The annotation tags on the Admin page: the vocabulary researchers tag conversations with."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn
import param
from psycopg import AsyncConnection

from dashboards.components.actions import run_on_click
from dashboards.session import PageSession
from workbench.db.errors import DataError
from workbench.db.repositories import AnnotationsRepo


class TagVocabulary(pn.viewable.Viewer):
    """Every tag with its description, and a form to add one (the database lets admins only)."""

    tags = param.DataFrame(default=None, doc="name, description")
    message = param.String(default="", doc="result of the last addition")

    def __init__(self, session: PageSession, **params: Any) -> None:
        super().__init__(**params)
        self._session = session

    async def load(self, conn: AsyncConnection[Any]) -> None:
        """Read the vocabulary (on the page's connection)."""
        tags = await AnnotationsRepo(conn).tags()
        self.tags = pd.DataFrame(
            [{"name": t.name, "description": t.description} for t in tags],
            columns=["name", "description"],
        )

    async def add(self, name: str, description: str) -> None:
        """Add a tag; a refused one (a bad or taken name) is said, not raised."""
        try:
            async with self._session.as_user() as conn:
                tag = await AnnotationsRepo(conn).add_tag(name, description)
                await self.load(conn)
        except DataError as exc:
            self.message = f"Refused: {exc}"
            return
        self.message = f"Tag {tag.name!r} added."

    def __panel__(self) -> pn.viewable.Viewable:
        name = pn.widgets.TextInput(name="New tag", placeholder="off-topic", width=200)
        description = pn.widgets.TextInput(name="What it means", sizing_mode="stretch_width")
        add = pn.widgets.Button(name="Add tag")
        run_on_click(add, lambda: self.add(name.value, description.value))

        @pn.depends(self.param.tags, self.param.message)
        def listed(tags: pd.DataFrame | None, message: str) -> pn.viewable.Viewable:
            table = pn.widgets.Tabulator(
                tags if tags is not None else pd.DataFrame(),
                disabled=True,
                show_index=False,
                name="annotation tags",
                sizing_mode="stretch_width",
            )
            if not message:
                return table
            return pn.Column(pn.pane.Alert(message, alert_type="info"), table)

        return pn.Column(listed, pn.FlexBox(name, description, add), sizing_mode="stretch_width")
