"""The Analytics page's plots of live traffic per day: latency, stages, activity, arms, connection.

Each takes the rows of one analytics view as a DataFrame and returns a Bokeh figure
(the same conventions as `evals.plots`, whose axes it shares).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, HoverTool, Whisker
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from evals.plots import date_axis, share_axis
from workbench.latency_stages import PARTS


def latency_trend(daily: pd.DataFrame) -> Any:
    """Voice-to-voice p50 (solid) and p95 (dashed) per day, one colour per model stack.

    `daily`: rows of `analytics_latency_daily` (`day`, `model_stack`, `v2v_p50_s`, `v2v_p95_s`).
    """
    return _daily_per_stack(
        daily,
        title="Voice to voice per day",
        y_axis_label="seconds",
        lines=[("v2v_p50_s", "solid", 2, "p50"), ("v2v_p95_s", "dashed", 1, "p95")],
        empty_note=" (no turns in range)",
    )


def _daily_per_stack(
    daily: pd.DataFrame,
    *,
    title: str,
    y_axis_label: str,
    lines: Sequence[tuple[str, str, int, str]],
    empty_note: str,
    extra_columns: Sequence[str] = (),
) -> Any:
    """One colour per model stack, one line per (column, dash, width, label) over the days;
    the first column's points marked. `extra_columns` ride along for hover tools."""
    plot = figure(
        height=300, width=720, x_axis_type="datetime", title=title, y_axis_label=y_axis_label
    )
    numeric = [column for column, *_ in lines] + list(extra_columns)
    for i, (stack, group) in enumerate(daily.groupby("model_stack")):
        colour = Category10_10[i % 10]
        source = ColumnDataSource(
            group.sort_values("day")[["day", *numeric]].astype({c: float for c in numeric})
        )
        for column, dash, width, label in lines:
            plot.line(
                "day",
                column,
                source=source,
                color=colour,
                line_dash=dash,
                line_width=width,
                legend_label=f"{stack} {label}",
            )
        plot.scatter("day", lines[0][0], source=source, color=colour, size=6)
    date_axis(plot, daily["day"] if "day" in daily else pd.Series(dtype=object))
    if daily.empty:
        plot.title.text += empty_note
    else:
        plot.legend.location = "top_left"
    return plot


def stage_breakdown(daily: pd.DataFrame) -> Any:
    """Mean latency of each stage per model stack over the range, turn-weighted, stacked."""
    stages = {stage.rollup_column: stage.label for stage in PARTS if stage.rollup_column}
    rows = []
    for stack, group in daily.groupby("model_stack"):
        weights = group["turns"].astype(float)
        rows.append(
            {
                "model_stack": stack,
                **{
                    column: float(np.average(group[column].fillna(0.0), weights=weights))
                    if weights.sum()
                    else 0.0
                    for column in stages
                },
            }
        )
    data = pd.DataFrame(rows, columns=["model_stack", *stages])
    plot = figure(
        y_range=list(data["model_stack"]),
        height=120 + 50 * len(data),
        width=720,
        title="Where the time goes (mean seconds per turn)",
        toolbar_location=None,
    )
    if not data.empty:
        plot.hbar_stack(
            list(stages),
            y="model_stack",
            height=0.6,
            source=ColumnDataSource(data),
            color=list(Category10_10[: len(stages)]),
            legend_label=list(stages.values()),
        )
        plot.legend.location = "bottom_right"
    return plot


def activity_bars(activity: pd.DataFrame) -> Any:
    """Conversations (bars) and turns (line) per day."""
    plot = figure(
        height=260, width=720, x_axis_type="datetime", title="Conversations and turns per day"
    )
    if not activity.empty:
        source = ColumnDataSource(activity[["day", "conversations", "turns"]])
        plot.vbar(
            x="day",
            top="conversations",
            width=0.8 * 86_400_000,
            source=source,
            fill_alpha=0.6,
            legend_label="conversations",
        )
        plot.line("day", "turns", source=source, color="black", legend_label="turns")
        date_axis(plot, activity["day"])
        plot.legend.location = "top_left"
    return plot


def arm_comparison(arms: pd.DataFrame) -> Any:
    """Mean voice-to-voice per experiment arm with its 95% interval over conversations.

    `arms`: `evals.experiments.arm_summaries` (`experiment`, `label`, `conversations`,
    `turns`, `v2v_mean_s`, `v2v_low_s`, `v2v_high_s`).
    """
    data = arms.dropna(subset=["v2v_mean_s"]).copy()
    data["arm"] = data["experiment"] + " · " + data["label"]
    plot = figure(
        y_range=list(data["arm"]),
        height=120 + 50 * len(data),
        width=720,
        title="Experiment arms: voice to voice (mean, 95% CI over conversations)",
        x_axis_label="seconds",
        toolbar_location=None,
    )
    if not data.empty:
        columns = ["v2v_mean_s", "v2v_low_s", "v2v_high_s"]
        source = ColumnDataSource(
            data[["arm", *columns, "conversations", "turns"]].astype(dict.fromkeys(columns, float))
        )
        plot.scatter("v2v_mean_s", "arm", source=source, size=9)
        plot.add_layout(
            Whisker(
                source=source, base="arm", lower="v2v_low_s", upper="v2v_high_s", dimension="width"
            )
        )
        plot.add_tools(
            HoverTool(
                tooltips=[
                    ("arm", "@arm"),
                    ("conversations", "@conversations"),
                    ("turns", "@turns"),
                    ("mean", "@v2v_mean_s{0.00} s [@v2v_low_s{0.00}, @v2v_high_s{0.00}]"),
                ]
            )
        )
    return plot


def interruption_trend(daily: pd.DataFrame) -> Any:
    """Share of agent turns the user interrupted, per day and model stack."""
    plot = figure(
        height=240,
        width=720,
        x_axis_type="datetime",
        title="Interruption rate per day",
        y_axis_label="share of agent turns",
    )
    for i, (stack, group) in enumerate(daily.groupby("model_stack")):
        source = ColumnDataSource(
            group.sort_values("day")[["day", "interruption_rate"]].astype(
                {"interruption_rate": float}
            )
        )
        plot.line(
            "day",
            "interruption_rate",
            source=source,
            color=Category10_10[i % 10],
            legend_label=str(stack),
        )
        plot.scatter("day", "interruption_rate", source=source, color=Category10_10[i % 10])
    date_axis(plot, daily["day"] if "day" in daily else pd.Series(dtype=object))
    share_axis(plot)
    return plot


def connection_trend(daily: pd.DataFrame) -> Any:
    """Connection quality per day and model stack: RTT p50 (solid) and p95 (dashed), jitter p50 (dotted).

    `daily`: rows of `analytics_connection_daily` (the median conversation's figures, ms).
    """
    plot = _daily_per_stack(
        daily,
        title="Connection quality per day (browser's statistics)",
        y_axis_label="milliseconds",
        lines=[
            ("rtt_p50_ms", "solid", 2, "RTT p50"),
            ("rtt_p95_ms", "dashed", 2, "RTT p95"),
            ("jitter_p50_ms", "dotted", 2, "jitter p50"),
        ],
        empty_note=": no samples in range",
        extra_columns=["conversations", "loss_rate"],
    )
    plot.add_tools(
        HoverTool(
            tooltips=[
                ("conversations", "@conversations"),
                ("RTT p50 / p95", "@rtt_p50_ms{0} / @rtt_p95_ms{0} ms"),
                ("jitter p50", "@jitter_p50_ms{0.0} ms"),
                ("packets lost", "@loss_rate{0.00%}"),
            ]
        )
    )
    return plot
