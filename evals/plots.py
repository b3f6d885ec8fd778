"""Bokeh figures shared by the analytics pages, the notebooks and eval reports: one plot, one definition.

Each function takes plain data (a pandas DataFrame or the evals' own result
objects) and returns a Bokeh figure; pages and notebooks only choose the data.
Intervals are drawn as whiskers, so results people compare carry their
uncertainty on the plot, not in a footnote.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from bokeh.models import (
    ColumnDataSource,
    DatetimeTickFormatter,
    DaysTicker,
    HoverTool,
    NumeralTickFormatter,
    Range1d,
    Span,
    Whisker,
)
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from evals.compare import MetricComparison
from workbench.latency_stages import PARTS, VOICE_TO_VOICE

V2V = VOICE_TO_VOICE.field


def latency_over_turns(turns: pd.DataFrame, *, title: str = "Latency per agent turn") -> Any:
    """Stacked per-stage latency per agent turn, with voice-to-voice as a line.

    `turns`: one row per agent turn with `turn` (index), the columns of the stages
    voice to voice is made of and voice to voice itself (seconds; missing values drawn as 0).
    """
    parts = [stage for stage in PARTS if stage.field in turns]
    stages = [stage.field for stage in parts]
    # Only the plotted columns, as floats: ids, texts and None would not serialise.
    data = pd.DataFrame({"turn": turns["turn"].astype(str)})
    for column in [*stages, V2V]:
        if column in turns:
            data[column] = pd.to_numeric(turns[column], errors="coerce").astype(float)
    data[stages] = data[stages].fillna(0.0)
    plot = figure(
        x_range=list(data["turn"]),
        height=320,
        width=720,
        title=title,
        x_axis_label="agent turn",
        y_axis_label="seconds",
        toolbar_location="above",
    )
    plot.vbar_stack(
        stages,
        x="turn",
        width=0.7,
        source=ColumnDataSource(data),
        color=list(Category10_10[: len(stages)]),
        legend_label=[stage.label for stage in parts],
    )
    if V2V in data:
        plot.line(
            "turn",
            V2V,
            source=ColumnDataSource(data),
            color="black",
            line_width=2,
            legend_label=VOICE_TO_VOICE.label,
        )
        plot.scatter("turn", V2V, source=ColumnDataSource(data), color="black", size=6)
    plot.legend.location = "top_left"
    plot.legend.click_policy = "hide"
    plot.add_tools(HoverTool(tooltips=[("turn", "@turn"), ("voice to voice", "@v2v_s{0.00} s")]))
    return plot


def latency_histogram(values: Sequence[float | None], *, title: str, bins: int = 30) -> Any:
    """Distribution of one latency (seconds) with p50 and p95 marked."""
    data = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    plot = figure(height=280, width=480, title=title, x_axis_label="seconds", y_axis_label="turns")
    if data.size == 0:
        return plot
    counts, edges = np.histogram(data, bins=bins)
    plot.quad(top=counts, bottom=0, left=edges[:-1], right=edges[1:], fill_alpha=0.6)
    for q, colour in ((50, "green"), (95, "red")):
        x = float(np.percentile(data, q))
        plot.add_layout(Span(location=x, dimension="height", line_color=colour, line_dash="dashed"))
        plot.scatter([x], [0], color=colour, size=8, legend_label=f"p{q} {x:.2f} s")
    return plot


def comparison_plot(rows: Sequence[MetricComparison], *, baseline: str, candidate: str) -> Any:
    """Each compared metric: baseline and candidate with 95% intervals, side by side."""
    labels = [r.label for r in rows]
    plot = figure(
        y_range=labels[::-1],
        height=90 + 70 * len(rows),
        width=720,
        title=f"{candidate} vs {baseline} (95% bootstrap intervals)",
        toolbar_location=None,
    )
    for name, offset, colour, side in (
        (baseline, -0.15, Category10_10[0], "baseline"),
        (candidate, 0.15, Category10_10[1], "candidate"),
    ):
        intervals = [getattr(r, side) for r in rows]
        source = ColumnDataSource(
            {
                "y": [(label, offset) for label in labels],
                "x": [i.estimate for i in intervals],
                "low": [i.low for i in intervals],
                "high": [i.high for i in intervals],
            }
        )
        plot.scatter("x", "y", source=source, size=9, color=colour, legend_label=name)
        plot.add_layout(
            Whisker(
                source=source,
                base="y",
                lower="low",
                upper="high",
                dimension="width",
                line_color=colour,
            )
        )
    plot.legend.location = "bottom_right"
    return plot


def date_axis(plot: Any, days: pd.Series) -> None:
    """Dates as dates on a time axis, and a short range readable.

    Bokeh labels ticks by the zoom level, so one day of data read "999000us";
    here every level reads as a date. Fewer than two weeks get a tick a day, and
    fewer than three days are centred in a three-day span.
    """
    day = "%b %d"
    plot.xaxis.formatter = DatetimeTickFormatter(
        microseconds=day,
        milliseconds=day,
        seconds=day,
        minsec=day,
        minutes=day,
        hourmin=day,
        hours=day,
        days=day,
        months="%b %Y",
        years="%Y",
    )
    if days.empty:
        return
    first, last = pd.to_datetime(days.min()), pd.to_datetime(days.max())
    if last - first < pd.Timedelta(days=14):
        plot.xaxis.ticker = DaysTicker(days=list(range(1, 32)))
    if last - first < pd.Timedelta(days=3):
        middle = first + (last - first) / 2
        span = pd.Timedelta(days=1.5)
        plot.x_range = Range1d(middle - span, middle + span)


def share_axis(plot: Any) -> None:
    """A y axis of shares: 0 to 100%, whatever the data."""
    plot.y_range = Range1d(0, 1)
    plot.yaxis.formatter = NumeralTickFormatter(format="0%")


def wer_over_time(runs: pd.DataFrame) -> Any:
    """WER of eval runs over time, one colour per (model, dataset), with 95% whiskers.

    `runs`: `started_at`, `model`, `dataset_id`, `wer`, `wer_low`, `wer_high`.
    """
    plot = figure(
        height=320,
        width=720,
        x_axis_type="datetime",
        title="WER per model and dataset",
        y_axis_label="WER",
    )
    columns = ["started_at", "model", "dataset_id", "wer", "wer_low", "wer_high"]
    for i, ((model, dataset), group) in enumerate(runs.groupby(["model", "dataset_id"])):
        colour = Category10_10[i % 10]
        source = ColumnDataSource(group.sort_values("started_at")[columns])
        plot.line(
            "started_at", "wer", source=source, color=colour, legend_label=f"{model} · {dataset}"
        )
        plot.scatter("started_at", "wer", source=source, color=colour, size=7)
        plot.add_layout(
            Whisker(
                source=source,
                base="started_at",
                lower="wer_low",
                upper="wer_high",
                line_color=colour,
            )
        )
    date_axis(plot, runs["started_at"] if "started_at" in runs else pd.Series(dtype=object))
    plot.add_tools(
        HoverTool(
            tooltips=[("model", "@model"), ("dataset", "@dataset_id"), ("WER", "@wer{0.000}")]
        )
    )
    return plot


def variant_scores(summary: dict[str, Any], *, metric: str = "judge_score") -> Any:
    """A prompt_quality summary: each variant's mean `metric` with its 95% interval."""
    variants = [(label, v[metric]) for label, v in summary["variants"].items() if v.get(metric)]
    labels = [label for label, _ in variants]
    source = ColumnDataSource(
        {
            "variant": labels,
            "mean": [v["mean"] for _, v in variants],
            "low": [v["ci95"][0] for _, v in variants],
            "high": [v["ci95"][1] for _, v in variants],
        }
    )
    plot = figure(
        x_range=labels,
        height=300,
        width=420,
        title=f"{metric} per prompt variant (95% CI)",
        toolbar_location=None,
    )
    plot.vbar(x="variant", top="mean", width=0.5, source=source, fill_alpha=0.6)
    plot.add_layout(Whisker(source=source, base="variant", lower="low", upper="high"))
    return plot


def turn_taking_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """A turn_taking summary as one row per setting, with the Pareto front marked.

    A setting is on the front when no other cuts users off less often without
    also waiting longer (p95); those are the only settings worth choosing.
    """
    rows = []
    for label, s in summary["settings"].items():
        if not s["delay_p95_s"]:
            continue  # every clip cut off: no delay to draw
        threshold, text_wait = s["unlikely_threshold"], s.get("text_done_delay_s")
        model = "VAD only" if threshold is None else f"turn model < {threshold:g}"
        if text_wait is not None:
            model += f", finished text ≤ {text_wait:g} s"
        rows.append(
            {
                "setting": label,
                "model": model,
                "cut_off": s["cut_off_rate"]["value"],
                "cut_low": s["cut_off_rate"]["ci95"][0],
                "cut_high": s["cut_off_rate"]["ci95"][1],
                "p50": s["delay_p50_s"]["value"],
                "p95": s["delay_p95_s"]["value"],
                "p95_low": s["delay_p95_s"]["ci95"][0],
                "p95_high": s["delay_p95_s"]["ci95"][1],
                "default": label == summary["default"],
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["front"] = [
        not (
            (frame["cut_off"] <= r.cut_off)
            & (frame["p95"] <= r.p95)
            & ((frame["cut_off"] < r.cut_off) | (frame["p95"] < r.p95))
        ).any()
        for r in frame.itertuples()
    ]
    return frame.sort_values(["cut_off", "p95"]).reset_index(drop=True)


def turn_taking_curve(summary: dict[str, Any]) -> Any:
    """Endpoint delay (p95, 95% CI) against premature cut-offs, one point per setting.

    Colour is the turn-model threshold (and the transcript rule's wait, where a
    setting has one); the line joins the Pareto front; the live defaults are the
    red ring.
    """
    frame = turn_taking_frame(summary)
    plot = figure(
        height=380,
        width=720,
        title="Turn taking: wait after the user stops vs users cut off",
        x_axis_label="share of utterances cut off (agent replies inside a pause)",
        y_axis_label="delay after end of speech, p95 (s)",
        toolbar_location=None,
    )
    if frame.empty:
        return plot
    for i, (model, group) in enumerate(frame.groupby("model")):
        colour = Category10_10[i % len(Category10_10)]
        source = ColumnDataSource(group)
        plot.scatter("cut_off", "p95", source=source, size=8, color=colour, legend_label=model)
        plot.add_layout(
            Whisker(
                source=source,
                base="cut_off",
                lower="p95_low",
                upper="p95_high",
                line_color=colour,
                line_alpha=0.4,
            )
        )
    front, default = frame[frame["front"]], frame[frame["default"]]
    plot.line(
        front["cut_off"],
        front["p95"],
        color="black",
        line_dash="dashed",
        legend_label="best trade-offs",
    )
    ring = {"size": 18, "fill_alpha": 0, "line_color": "red", "line_width": 2}
    plot.scatter(default["cut_off"], default["p95"], legend_label="live default", **ring)
    plot.add_tools(
        HoverTool(
            tooltips=[
                ("setting", "@setting"),
                ("cut off", "@cut_off{0.00} [@cut_low{0.00}, @cut_high{0.00}]"),
                ("delay p50 / p95", "@p50{0.00} / @p95{0.00} s"),
            ]
        )
    )
    plot.x_range.start = 0
    plot.y_range.start = 0
    plot.legend.location = "top_right"
    return plot
