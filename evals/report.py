"""A self-contained HTML report of one or more eval runs: what an ML engineer sends a colleague.

The report holds everything needed to judge the results without the
workbench: each run's metadata (task and version, dataset id, git sha, the
full spec snapshot), its headline metrics, the paired comparison of every run
against the first with bootstrap intervals and a verdict, the task's plots
(Bokeh, with its JavaScript inlined, so the file opens offline), and the
samples the models got wrong. Every text from data is escaped.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bokeh.embed import components
from bokeh.resources import Resources

from evals.compare import METRICS, MetricComparison, compare_samples, format_interval
from evals.plots import comparison_plot, latency_histogram, turn_taking_curve, variant_scores
from evals.run_folder import RunFolder, RunInfo, git_sha
from evals.simulation.units import CALLS_FOLDER
from workbench.db.models import EvalSample
from workbench.latency_stages import VOICE_TO_VOICE

ERROR_EXAMPLES = 15  # per run


class _OwnScriptsOnly(Resources):  # type: ignore[misc]  # bokeh ships no stubs for it
    """Bokeh's JavaScript inlined, without the files other libraries' models ask for by URL.

    Once Panel is imported (in a notebook, or the web app's process) its models add
    `<script src="static/...">` tags that only resolve on a Panel server; the
    report's plots are plain Bokeh and need none of them.
    """

    def _collect_external_resources(self, resource_attr: Any) -> list[str]:
        return []


@dataclass(frozen=True)
class _Run:
    label: str
    info: RunInfo
    metrics: dict[str, Any]
    samples: list[EvalSample]
    path: Path


def build_report(folders: Sequence[RunFolder], *, title: str | None = None) -> str:
    """The report of `folders` (the first is the baseline of every comparison), as one HTML page."""
    if not folders:
        raise ValueError("a report needs at least one run")
    runs = [_read(folder) for folder in folders]
    title = title or "Eval report: " + ", ".join(
        sorted({f"{r.info.task} on {r.info.dataset_id}" for r in runs})
    )
    sections: list[str] = [_runs_table(runs), _metrics_table(runs)]
    plots: list[Any] = []
    baseline = runs[0]
    for candidate in runs[1:]:
        rows = _comparable(baseline, candidate)
        if rows is None:
            sections.append(
                f"<p class=note>{_e(candidate.label)} is not compared with {_e(baseline.label)}: "
                "different task, task version or dataset.</p>"
            )
            continue
        sections.append(_comparison_table(baseline.label, candidate.label, rows))
        plots.append(comparison_plot(rows, baseline=baseline.label, candidate=candidate.label))
    for run in runs:
        plots += _task_plots(run)
    script, divs = components(plots) if plots else ("", ())
    plot_html = "".join(f"<div class=plot>{div}</div>" for div in divs)
    sections.append(f"<h2>Plots</h2>{plot_html}" if plots else "")
    sections += [_error_examples(run) for run in runs]
    sections += [_simulated_calls(run) for run in runs if run.info.task == "simulation"]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
{_OwnScriptsOnly(mode="inline").render()}
<style>
body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}}
table{{border-collapse:collapse;margin:.5rem 0 1.5rem}}
th,td{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}}
th{{background:#f3f4f6}} td.num{{text-align:right;font-variant-numeric:tabular-nums}}
.better{{color:#137333}} .worse{{color:#b3261e}} .pass{{color:#137333}} .fail,.error{{color:#b3261e}} .note{{color:#666}}
pre{{font-size:.8rem;max-width:60rem;overflow:auto}} .plot{{margin:1rem 0}}
</style></head>
<body>
<h1>{_e(title)}</h1>
<p class=note>Generated {generated} from {len(runs)} run(s) by voice-workbench
{_e(git_sha() or "(no git checkout)")}.</p>
{"".join(sections)}
{script}
</body></html>
"""


def _read(folder: RunFolder) -> _Run:
    if not folder.exists():
        raise FileNotFoundError(f"{folder.path} holds no eval run")
    return _Run(
        label=folder.path.name,
        info=folder.read_info(),
        metrics=folder.read_metrics() or {},
        samples=folder.samples(),
        path=folder.path,
    )


def _comparable(baseline: _Run, candidate: _Run) -> list[MetricComparison] | None:
    a, b = baseline.info, candidate.info
    same = (a.task, a.task_version, a.dataset_id) == (b.task, b.task_version, b.dataset_id)
    if not same or a.task not in METRICS:
        return None
    return compare_samples(a.task, baseline.samples, candidate.samples)


def _runs_table(runs: list[_Run]) -> str:
    rows = "".join(
        f"<tr><td>{_e(r.label)}</td><td>{_e(r.info.task)} v{_e(r.info.task_version)}</td>"
        f"<td>{_e(r.info.dataset_id)}</td><td>{_e(r.info.started_at)}</td>"
        f"<td>{_e(r.info.git_sha or '')}</td><td class=num>{len(r.samples)}</td>"
        f"<td class=num>{sum(s.error is not None for s in r.samples)}</td>"
        f"<td><details><summary>spec</summary><pre>{_e(json.dumps(r.info.spec, indent=2))}"
        "</pre></details></td></tr>"
        for r in runs
    )
    return (
        "<h2>Runs</h2><table><tr><th>run</th><th>task</th><th>dataset</th><th>started</th>"
        f"<th>git sha</th><th>samples</th><th>errors</th><th>spec snapshot</th></tr>{rows}</table>"
    )


def _metrics_table(runs: list[_Run]) -> str:
    flat = [_scalars(r.metrics) for r in runs]
    keys = sorted({k for f in flat for k in f})
    if not keys:
        return ""
    head = "".join(f"<th>{_e(r.label)}</th>" for r in runs)
    body = "".join(
        f"<tr><td>{_e(k)}</td>" + "".join(f"<td class=num>{_e(f.get(k, ''))}</td>" for f in flat)
        for k in keys
    )
    return f"<h2>Headline metrics</h2><table><tr><th>metric</th>{head}</tr>{body}</table>"


def _scalars(metrics: dict[str, Any], prefix: str = "", depth: int = 0) -> dict[str, str]:
    """Numbers and intervals of a run's metrics, flattened (a grid's many settings are left to its plot)."""
    out: dict[str, str] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            out[name] = f"{value:.4g}"
        elif (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int | float) for v in value)
        ):
            out[name] = f"[{value[0]:.4g}, {value[1]:.4g}]"
        elif isinstance(value, dict) and depth < 1 and len(value) <= 12:
            out |= _scalars(value, f"{name}.", depth + 1)
    return out


def _comparison_table(baseline: str, candidate: str, rows: list[MetricComparison]) -> str:
    body = "".join(
        f"<tr><td>{_e(r.label)}</td><td class=num>{format_interval(r.baseline)}</td>"
        f"<td class=num>{format_interval(r.candidate)}</td>"
        f"<td class=num>{format_interval(r.difference, signed=True)}</td>"
        f"<td class=num>{r.samples}</td>"
        f"<td class={r.verdict.split()[0]}>{_e(r.verdict)}</td></tr>"
        for r in rows
    )
    return (
        f"<h2>{_e(candidate)} against {_e(baseline)}</h2>"
        "<p class=note>Paired over the samples both runs scored; 95% bootstrap intervals; "
        "a difference whose interval excludes zero is significant.</p>"
        "<table><tr><th>metric</th><th>baseline</th><th>candidate</th>"
        f"<th>difference</th><th>n</th><th>verdict</th></tr>{body}</table>"
    )


def _task_plots(run: _Run) -> list[Any]:
    task, metrics = run.info.task, run.metrics
    if task == "turn_taking" and metrics.get("settings"):
        return [turn_taking_curve(metrics)]
    if task == "prompt_quality" and metrics.get("variants"):
        return [variant_scores(metrics)]
    if task == "latency":
        values = [s.metrics.get(VOICE_TO_VOICE.field) for s in run.samples if s.error is None]
        return [latency_histogram(values, title=f"{run.label}: voice to voice")]
    if task == "simulation":
        heard = [v for s in run.samples if s.error is None for v in s.metrics["heard_v2v_s"]]
        return [latency_histogram(heard, title=f"{run.label}: voice to voice, as callers heard it")]
    return []


def _simulated_calls(run: _Run) -> str:
    """Every call: its verdict and what failed, the dialogue as heard, and a failed call's audio."""
    rows = []
    for s in run.samples:
        if s.error is not None:
            verdict, detail, dialogue, audio = "error", s.error, "", ""
        else:
            passed = s.metrics.get("passed") == 1.0
            verdict = "pass" if passed else "fail"
            detail = "; ".join(s.metrics.get("failed", []))
            dialogue = "".join(
                f"<p><b>caller</b> {_e(t['caller'])}<br><b>agent</b> {_e(t['agent'])}</p>"
                for t in s.metrics.get("dialogue", [])
            )
            dialogue = f"<details><summary>dialogue</summary>{dialogue}</details>"
            audio = "" if passed else _audio(run.path / CALLS_FOLDER / s.metrics.get("audio", ""))
        rows.append(
            f"<tr><td>{_e(s.sample_id)}</td><td class={verdict}>{verdict}</td>"
            f"<td>{_e(detail)}{dialogue}</td><td>{audio}</td></tr>"
        )
    return (
        f"<h2>{_e(run.label)}: calls</h2><p class=note>Audio: the caller left, the agent right, "
        "as the caller heard it.</p><table><tr><th>call</th><th>verdict</th>"
        f"<th>what failed</th><th>audio</th></tr>{''.join(rows)}</table>"
    )


def _audio(path: Path) -> str:
    """An inline player for a WAV (the report stays one self-contained file)."""
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<audio controls preload=none src="data:audio/wav;base64,{data}"></audio>'


def _error_examples(run: _Run) -> str:
    wrong = [
        s
        for s in run.samples
        if s.error is None and s.metrics.get("word_errors") and s.reference is not None
    ]
    failed = [s for s in run.samples if s.error is not None]
    if not wrong and not failed:
        return ""
    rows = "".join(
        f"<tr><td>{_e(s.sample_id)}</td><td class=num>{s.metrics['word_errors']}</td>"
        f"<td>{_e(s.reference or '')}</td><td>{_e(s.hypothesis or '')}</td></tr>"
        for s in sorted(wrong, key=lambda s: -s.metrics["word_errors"])[:ERROR_EXAMPLES]
    )
    errors = "".join(
        f"<tr><td>{_e(s.sample_id)}</td><td colspan=3>{_e(s.error or '')}</td></tr>"
        for s in failed[:ERROR_EXAMPLES]
    )
    return (
        f"<h2>{_e(run.label)}: what went wrong</h2><table><tr><th>sample</th><th>word errors</th>"
        f"<th>reference</th><th>hypothesis</th></tr>{rows}{errors}</table>"
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
