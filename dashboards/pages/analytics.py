"""Analytics: latency and activity from the database views, eval runs with drill-down to samples.

`AnalyticsPage` holds the filters and the loaded frames (param, so the view
and the tests talk to the same object) and runs the queries: every one under
the viewer's RLS identity against the views, never whole tables pulled into pandas.
Plots come from `evals.live_plots` and `evals.plots`, the same the notebooks use.
"""

from __future__ import annotations

import asyncio
import html
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID

import pandas as pd
import panel as pn
import param

from dashboards.components.actions import run_on_click
from dashboards.components.service_health import health_markdown, service_alerts
from dashboards.context import web_context
from dashboards.files import file_url
from dashboards.session import PageSession
from evals.experiments import ARM_COLUMNS, ArmDecision, arm_summaries, decisions
from evals.live_plots import (
    activity_bars,
    arm_comparison,
    connection_trend,
    interruption_trend,
    latency_trend,
    stage_breakdown,
)
from evals.plots import turn_taking_curve, variant_scores, wer_over_time
from workbench.db.models import ConnectionDaily, LatencyDaily, LiveStack, StoredObject
from workbench.db.repositories import (
    AnalyticsRepo,
    EvalsRepo,
    ProfilesRepo,
    PromptsRepo,
    WorkersRepo,
)

ALL = "(all)"
# Whose conversations the live-traffic plots show: people's, or simulated callers'.
PEOPLE, SIMULATED = "people", "simulated callers"


class AnalyticsPage(pn.viewable.Viewer):
    """Filters, the data they select, and the queries that select it."""

    since = param.Date(default=None, doc="first day shown")
    until = param.Date(default=None, doc="last day shown")
    model_stack = param.Selector(default=ALL, objects=[ALL], doc="model stack filter")
    prompt_version = param.Selector(default=ALL, objects=[ALL], doc="prompt version filter")
    callers = param.Selector(
        default=PEOPLE, objects=[PEOPLE, SIMULATED], doc="people's conversations or simulated"
    )
    latency = param.DataFrame(default=None, doc="analytics_latency_daily rows")
    activity = param.DataFrame(default=None, doc="analytics_activity_daily rows")
    arms = param.DataFrame(default=None, doc="experiment arms aggregated in SQL")
    decisions = param.List(default=[], doc="each arm against its experiment's first, per metric")
    eval_runs = param.DataFrame(default=None, doc="eval runs visible to the viewer")
    connection = param.DataFrame(default=None, doc="connection quality per day and stack")
    reports = param.List(default=[], doc="stored eval reports (python -m evals report --as)")
    selected_run = param.String(default="", doc="eval run id to drill into")
    samples = param.DataFrame(default=None, doc="samples of the selected run")
    researcher = param.Boolean(default=False, doc="the viewer may see eval results")
    health = param.List(default=[], doc="the stacks' workers now (public.live_stacks)")
    alerts = param.List(default=[], doc="alerts firing or pending in the local Prometheus")

    def __init__(self, session: PageSession, **params: Any) -> None:
        today = datetime.now(UTC).date()
        params.setdefault("since", today - timedelta(days=29))
        params.setdefault("until", today)
        super().__init__(**params)
        self._session = session
        self._prompt_ids: dict[str, UUID] = {}
        self.param.watch(lambda _e: pn.state.execute(self.load_samples), "selected_run")

    def _range(self) -> tuple[datetime, datetime]:
        since = datetime.combine(self.since, time.min, UTC)
        until = datetime.combine(self.until, time.min, UTC) + timedelta(days=1)
        if since >= until:
            raise ValueError("the first day must not be after the last day")
        return since, until

    async def apply(self) -> None:
        """Load for the filters as set; a bad range is said in a notification."""
        try:
            await self.load()
        except ValueError as exc:  # e.g. an inverted date range
            if pn.state.notifications is not None:
                pn.state.notifications.error(str(exc))

    async def load(self) -> None:
        """Query the views for the current filters."""
        since, until = self._range()
        stack = None if self.model_stack == ALL else self.model_stack
        connect = self._session.as_user
        async with connect() as conn:
            self._prompt_ids = await PromptsRepo(conn).version_labels()
            researcher = await ProfilesRepo(conn).is_researcher()
            runs = await EvalsRepo(conn).runs() if researcher else []
            reports = await EvalsRepo(conn).reports() if researcher else []
            self.health = list((await WorkersRepo(conn).live_stacks()).values())
        self.alerts = await service_alerts(web_context().settings)
        self.param.prompt_version.objects = [ALL, *self._prompt_ids]
        prompt_version_id = self._prompt_ids.get(self.prompt_version)

        latency, activity, arms, connection = await self._live_traffic(
            since, until, stack=stack, prompt_version_id=prompt_version_id
        )
        stacks = sorted({r.model_stack for r in latency} | ({stack} if stack else set()))
        self.param.model_stack.objects = [ALL, *stacks]
        self.param.update(
            latency=pd.DataFrame([r.model_dump() for r in latency], columns=_LATENCY_COLUMNS),
            activity=pd.DataFrame(
                [r.model_dump() for r in activity], columns=["day", "conversations", "turns"]
            ),
            eval_runs=_runs_frame([r.model_dump() for r in runs]),
            reports=reports,
            researcher=researcher,
            arms=arm_summaries(arms),
            decisions=decisions(arms),
            connection=pd.DataFrame(
                [r.model_dump() for r in connection], columns=_CONNECTION_COLUMNS
            ),
        )

    async def _live_traffic(
        self,
        since: datetime,
        until: datetime,
        *,
        stack: str | None,
        prompt_version_id: UUID | None,
    ) -> tuple[list[Any], list[Any], list[dict[str, Any]], list[Any]]:
        """Latency, activity, experiment arms and connection quality for the filters.

        Queried at the same time on separate connections, each in the viewer's RLS
        session (each scans its share of the turns; one after another they would add up).
        """
        connect = self._session.as_user
        simulated = self.callers == SIMULATED

        async def latency_daily() -> list[Any]:
            async with connect() as conn:
                return await AnalyticsRepo(conn).latency_daily(
                    since=since,
                    until=until,
                    model_stack=stack,
                    prompt_version_id=prompt_version_id,
                    simulated=simulated,
                )

        async def activity_daily() -> list[Any]:
            async with connect() as conn:
                return await AnalyticsRepo(conn).activity_daily(
                    since=since, until=until, simulated=simulated
                )

        async def experiment_arms() -> list[dict[str, Any]]:
            async with connect() as conn:
                return await AnalyticsRepo(conn).experiment_arms(
                    since=since, until=until, simulated=simulated
                )

        async def connection_daily() -> list[Any]:
            async with connect() as conn:
                return await AnalyticsRepo(conn).connection_daily(
                    since=since, until=until, model_stack=stack
                )

        latency, activity, arms, connection = await asyncio.gather(
            latency_daily(), activity_daily(), experiment_arms(), connection_daily()
        )
        return latency, activity, arms, connection

    async def load_samples(self) -> None:
        """Samples of `selected_run` (empty when none is selected)."""
        if not self.selected_run:
            self.samples = pd.DataFrame(columns=["sample_id", "reference", "hypothesis", "error"])
            return
        async with self._session.as_user() as conn:
            samples = await EvalsRepo(conn).samples(UUID(self.selected_run))
        self.samples = pd.DataFrame(
            [
                {
                    "sample_id": s.sample_id,
                    "reference": s.reference,
                    "hypothesis": s.hypothesis,
                    "error": s.error,
                    **{
                        k: v
                        for k, v in s.metrics.items()
                        if isinstance(v, int | float | str | bool)
                    },
                }
                for s in samples
            ]
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return analytics_view(self)


# Analytics frames take their columns from the row models.
_CONNECTION_COLUMNS = list(ConnectionDaily.model_fields)
_LATENCY_COLUMNS = list(LatencyDaily.model_fields)


def _runs_frame(runs: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for run in runs:
        metrics = run["metrics"]
        spec = run["spec"]
        model = (spec.get("stt") or spec.get("llm") or spec.get("stack") or {}).get("name", "?")
        ci = metrics.get("wer_ci95") or [None, None]
        rows.append(
            {
                "id": str(run["id"]),
                "task": run["task"],
                "status": run["status"],
                "model": model,
                "dataset_id": run["dataset_id"],
                "started_at": run["started_at"],
                "wer": metrics.get("wer"),
                "wer_low": ci[0],
                "wer_high": ci[1],
                "samples": metrics.get("samples")
                or metrics.get("dialogues")
                or metrics.get("calls"),  # a simulation's
                "references": spec.get("references", "human"),
                "metrics": metrics,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "id",
            "task",
            "status",
            "model",
            "dataset_id",
            "started_at",
            "wer",
            "wer_low",
            "wer_high",
            "samples",
            "references",
            "metrics",
        ],
    )


def reports_list(reports: list[StoredObject]) -> pn.viewable.Viewable:
    """Links to the stored eval reports (each opens in a tab of its own, sandboxed)."""
    if not reports:
        return pn.pane.Markdown(
            "No shared reports yet: `python -m evals report RUN [RUN...] --as EMAIL` stores one here."
        )
    links = "".join(
        f'<li><a href="{html.escape(file_url(r.bucket, r.path))}" target="_blank" '
        f'rel="noopener">{html.escape(r.path.rsplit("/", 1)[-1])}</a> '
        f"({r.created_at:%Y-%m-%d %H:%M}, {r.size_bytes / 1e6:.1f} MB)</li>"
        for r in reports
    )
    return pn.pane.HTML(f"<h3>Reports</h3><ul>{links}</ul>", name="reports")


def latest_summary(runs: pd.DataFrame, task: str) -> dict[str, Any] | None:
    """Metrics of the newest completed run of `task`, if any."""
    done = runs[(runs["task"] == task) & (runs["status"] == "completed")]
    if done.empty:
        return None
    summary: dict[str, Any] = done.sort_values("started_at").iloc[-1]["metrics"]
    return summary


def plot_pane(plot: Any) -> pn.pane.Bokeh:
    """A plot as wide as the page allows (down to a phone's width), its height kept."""
    plot.sizing_mode = "stretch_width"
    plot.min_width = 240
    return pn.pane.Bokeh(plot, sizing_mode="stretch_width")


def analytics_view(page: AnalyticsPage) -> pn.viewable.Viewable:
    """The page body for a loaded page; Apply loads the filters as set."""
    since = pn.widgets.DatePicker.from_param(page.param.since, name="From", width=150)
    until = pn.widgets.DatePicker.from_param(page.param.until, name="To", width=150)
    stack = pn.widgets.Select.from_param(page.param.model_stack, name="Model stack", width=200)
    prompt = pn.widgets.Select.from_param(
        page.param.prompt_version, name="Prompt version", width=220
    )
    callers = pn.widgets.Select.from_param(page.param.callers, name="Callers", width=170)
    apply = pn.widgets.Button(name="Apply filters", button_type="primary", width=130, align="end")
    run_on_click(apply, page.apply)

    # One tab at a time: a hidden tab's plots are built (lazy) and drawn (dynamic tabs)
    # when it is opened, so the page is ready after its first two plots, not all eight
    # (each Bokeh figure costs ~30 ms to build here and more to draw).
    @pn.depends(page.param.latency)
    def latency_section(latency: pd.DataFrame | None) -> pn.viewable.Viewable:
        latency = latency if latency is not None else pd.DataFrame(columns=_LATENCY_COLUMNS)
        return pn.Column(plot_pane(latency_trend(latency)), plot_pane(stage_breakdown(latency)))

    @pn.depends(page.param.latency, page.param.activity, page.param.connection)
    def activity_section(
        latency: pd.DataFrame | None,
        activity: pd.DataFrame | None,
        connection: pd.DataFrame | None,
    ) -> pn.viewable.Viewable:
        return pn.Column(
            plot_pane(
                activity_bars(
                    activity
                    if activity is not None
                    else pd.DataFrame(columns=["day", "conversations", "turns"])
                )
            ),
            plot_pane(
                interruption_trend(
                    latency if latency is not None else pd.DataFrame(columns=_LATENCY_COLUMNS)
                )
            ),
            plot_pane(
                connection_trend(
                    connection
                    if connection is not None
                    else pd.DataFrame(columns=_CONNECTION_COLUMNS)
                )
            ),
        )

    @pn.depends(page.param.arms, page.param.decisions)
    def experiments_section(
        arms: pd.DataFrame | None, found: list[ArmDecision]
    ) -> pn.viewable.Viewable:
        plot = plot_pane(
            arm_comparison(arms if arms is not None else pd.DataFrame(columns=ARM_COLUMNS))
        )
        return pn.Column(plot, decisions_table(found), sizing_mode="stretch_width")

    @pn.depends(page.param.eval_runs, page.param.researcher)
    def eval_section(runs: pd.DataFrame | None, researcher: bool) -> pn.viewable.Viewable:
        if not researcher:
            return pn.pane.Markdown("Eval results are visible to researchers and admins.")
        runs = runs if runs is not None else _runs_frame([])
        asr = runs[(runs["task"] == "asr") & runs["wer"].notna()]
        parts: list[Any] = [pn.pane.Markdown("## Eval runs")]
        parts.append(
            plot_pane(wer_over_time(asr))
            if not asr.empty
            else pn.pane.Markdown(
                "No ASR runs yet: `python -m evals run --task asr ... --as EMAIL`."
            )
        )
        summary = latest_summary(runs, "prompt_quality")
        if summary:
            parts.append(plot_pane(variant_scores(summary)))
        turn_taking = latest_summary(runs, "turn_taking")
        if turn_taking:
            parts.append(plot_pane(turn_taking_curve(turn_taking)))
        parts.append(reports_list(page.reports))
        parts.append(
            pn.widgets.Tabulator(
                runs.drop(columns=["metrics"]),
                disabled=True,
                pagination="local",
                page_size=10,
                show_index=False,
                name="runs",
                sizing_mode="stretch_width",
            )
        )
        choices = {"(none)": ""} | {
            f"{r.task} · {r.model} · {r.dataset_id} · {r.started_at:%Y-%m-%d %H:%M}": r.id
            for r in runs.itertuples()
        }
        picker = pn.widgets.Select(
            name="Show samples of run",
            options=choices,
            value=page.selected_run if page.selected_run in choices.values() else "",
        )
        picker.link(page, value="selected_run")
        parts.append(picker)
        return pn.Column(*parts)

    @pn.depends(page.param.health, page.param.alerts)
    def health_section(
        health: list[LiveStack], alerts: list[dict[str, Any]]
    ) -> pn.viewable.Viewable:
        return pn.pane.Markdown(health_markdown(health, alerts), name="health")

    @pn.depends(page.param.samples)
    def samples_section(samples: pd.DataFrame | None) -> pn.viewable.Viewable:
        if samples is None or samples.empty:
            return pn.pane.Markdown("Select a run to see its samples.")
        return pn.widgets.Tabulator(
            samples, disabled=True, pagination="local", page_size=15, sizing_mode="stretch_width"
        )

    return pn.Column(
        pn.FlexBox(since, until, stack, prompt, callers, apply),  # wraps on narrow screens
        pn.pane.Markdown("## Service now"),
        health_section,
        pn.pane.Markdown("## Live conversations"),
        pn.Tabs(
            ("Latency", pn.panel(latency_section, lazy=True)),
            ("Activity and connection", pn.panel(activity_section, lazy=True)),
            ("Experiments", pn.panel(experiments_section, lazy=True)),
            (
                "Evals",
                pn.Column(
                    pn.panel(eval_section, lazy=True),
                    pn.panel(samples_section, lazy=True),
                    sizing_mode="stretch_width",
                ),
            ),
            dynamic=True,
            sizing_mode="stretch_width",
        ),
        sizing_mode="stretch_width",
    )


def decisions_table(found: list[ArmDecision]) -> pn.viewable.Viewable:
    """Each arm against its experiment's first arm: the verdict per metric, in words."""
    if not found:
        return pn.pane.Markdown("*No experiment with two arms has conversations in this range.*")
    frame = pd.DataFrame(
        [
            {
                "experiment": d.experiment,
                "arm": f"{d.arm} vs {d.baseline}",
                "metric": d.metric.name,
                "conversations": f"{d.n_arm} / {d.n_baseline}",
                "verdict": d.verdict,
            }
            for d in found
        ]
    )
    return pn.widgets.Tabulator(
        frame, disabled=True, show_index=False, name="decisions", sizing_mode="stretch_width"
    )
