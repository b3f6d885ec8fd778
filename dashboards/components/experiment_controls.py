"""The experiments of a prompt on the Admin page: each arm's tally, start or stop, promote an arm, create one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import panel as pn

from dashboards.components.actions import run_on_click
from dashboards.text import markdown_text
from workbench.db.models import ArmTally, Experiment


def arms_markdown(experiment: Experiment, arms: list[ArmTally]) -> str:
    """An experiment's status and, per arm, its weight and the conversations assigned so far."""
    parts = [f"**{markdown_text(experiment.name)}**: {experiment.status}"]
    for arm in arms:
        if arm.experiment_id == experiment.id:
            count = f"{arm.conversations} conversation{'s' if arm.conversations != 1 else ''}"
            parts.append(f"{markdown_text(arm.label)} (weight {arm.weight:g}): {count}")
    return " · ".join(parts)


def experiment_controls(
    experiments: list[Experiment],
    arms: list[ArmTally],
    *,
    toggle: Callable[[Experiment], Awaitable[None]],
    promote: Callable[[Experiment, str], Awaitable[None]],
    create: Callable[[str, str], Awaitable[None]],
) -> pn.viewable.Viewable:
    """One row per experiment (its arms, start or stop, promote an arm), then the creation form."""
    rows = []
    for experiment in experiments:
        label = "Stop" if experiment.status == "running" else "Start"
        button = pn.widgets.Button(
            name=f"{label} {experiment.name}", disabled=experiment.status == "stopped"
        )
        run_on_click(button, partial(toggle, experiment))
        promotions = []
        for arm in (a for a in arms if a.experiment_id == experiment.id):
            promoting = pn.widgets.Button(name=f"Promote {arm.label}", button_type="success")
            run_on_click(promoting, partial(promote, experiment, arm.label))
            promotions.append(promoting)
        rows.append(
            pn.FlexBox(pn.pane.Markdown(arms_markdown(experiment, arms)), button, *promotions)
        )
    name = pn.widgets.TextInput(name="Experiment name", width=250)
    new_arms = pn.widgets.TextInput(
        name="Arms (version:weight, ...)", placeholder="1:3, 2:1", width=250
    )
    creating = pn.widgets.Button(name="Create experiment")
    run_on_click(creating, lambda: create(name.value, new_arms.value))
    return pn.Column(*rows, pn.FlexBox(name, new_arms, creating), sizing_mode="stretch_width")


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
