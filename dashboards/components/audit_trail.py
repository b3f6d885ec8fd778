"""The audit trail on the Admin page: what the database recorded, filtered by kind, person and day."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pandas as pd
import panel as pn
import param
from psycopg import AsyncConnection

from dashboards.components.actions import run_on_click
from dashboards.session import PageSession
from workbench.db.models import AnalyticsKind
from workbench.db.repositories import AnalyticsRepo

# What the database records by itself (supabase/migrations/*_audit_trail.sql).
AUDITED: tuple[AnalyticsKind, ...] = (
    "login",
    "logout",
    "conversation_started",
    "conversation_ended",
    "export_requested",
    "prompt_activated",
    "experiment_started",
    "experiment_stopped",
    "role_changed",
)
AUDIT_COLUMNS = ["when", "who", "what", "details"]
# Unless a day is picked, the events of the last week.
DEFAULT_DAYS = 7


def _label(kind: str) -> str:
    return kind.replace("_", " ")


class AuditTrail(pn.viewable.Viewer):
    """Sign-ins, conversations, exports, activations, experiments and role changes, newest first."""

    kinds = param.ListSelector(
        default=[], objects=[_label(k) for k in AUDITED], doc="what (none: everything)"
    )
    who = param.String(default="", doc="a person's name (part of it) or id")
    since = param.Date(default=None, doc="the first day (default: a week ago)")
    events = param.DataFrame(default=None, doc="the events as filtered, newest first")

    def __init__(self, session: PageSession, **params: Any) -> None:
        super().__init__(**params)
        self._session = session

    async def load(self, conn: AsyncConnection[Any]) -> None:
        """Read the events for the filters as set, on the admin's connection."""
        since = self.since or (datetime.now(UTC) - timedelta(days=DEFAULT_DAYS)).date()
        chosen = [kind for kind in AUDITED if _label(kind) in self.kinds]
        events = await AnalyticsRepo(conn).audit_events(
            kinds=chosen or list(AUDITED),
            who=self.who,
            since=datetime.combine(since, time.min, tzinfo=UTC),
        )
        self.events = pd.DataFrame(
            [
                {
                    "when": e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
                    "who": e.who or (str(e.user_id) if e.user_id else "(service)"),
                    "what": _label(e.kind),
                    "details": json.dumps(e.payload, sort_keys=True),
                }
                for e in events
            ],
            columns=AUDIT_COLUMNS,
        )

    async def show(self) -> None:
        """Read the events again for the filters as set."""
        async with self._session.as_user() as conn:
            await self.load(conn)

    @param.depends("events")
    def table(self) -> pn.viewable.Viewable:
        """The events, or what to do when none match."""
        if self.events is None or self.events.empty:
            return pn.pane.Markdown("No events match: widen the filters or pick an earlier day.")
        return pn.widgets.Tabulator(
            self.events,
            disabled=True,
            show_index=False,
            pagination="local",
            page_size=15,
            name="audit",
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        show = pn.widgets.Button(name="Show events", align="end")
        run_on_click(show, self.show)
        return pn.Column(
            pn.FlexBox(
                pn.widgets.MultiChoice.from_param(
                    self.param.kinds, name="What", max_width=420, sizing_mode="stretch_width"
                ),
                pn.widgets.TextInput.from_param(self.param.who, name="Who (name or id)", width=220),
                pn.widgets.DatePicker.from_param(self.param.since, name="From", width=150),
                show,
            ),
            self.table,
            sizing_mode="stretch_width",
        )
