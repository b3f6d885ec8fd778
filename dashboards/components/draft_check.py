"""Simulate a prompt version before activating it: a suite's callers against it and the active one.

From the Admin page an admin picks a suite (`suites/*.yaml`) and a version (a
draft too); `python -m evals simulate` runs twice as child processes of the web
server, one after the other: on the active version, then on the chosen one,
each as the admin (`--as`: the runs land in Supabase like any eval run), pinned
with `SLUG@VERSION`. The web process loads no model: the children do, and their
calls go through LiveKit to the agent workers like any room. While they run the
panel shows progress; then pass counts and each metric's difference with its
scenario-level 95% interval and a verdict (`evals.compare`), beside the diff.

One check runs at a time per web server (each holds the machine's cores for
minutes). A run folder is kept per suite, prompt version and day, so the active
version is not called again for a second draft checked the same day.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import panel as pn
import param

from dashboards.components.actions import run_on_click
from evals.compare import MetricComparison, compare_runs, format_interval
from evals.run_folder import RunFolder
from evals.simulation.suite import load_suite
from workbench.config import REPO_ROOT

SUITES_DIR = REPO_ROOT / "suites"
CONCURRENCY = 2  # calls at once: what a 2-core machine holds without slowing the agent much
_one_at_a_time = asyncio.Lock()


def available_suites() -> list[str]:
    """The suites an admin can run (names of `suites/*.yaml`)."""
    return sorted(path.stem for path in SUITES_DIR.glob("*.yaml"))


class SuiteRun:
    """One `python -m evals simulate` child process writing one run folder."""

    def __init__(self, *, suite: str, slug: str, version: int, email: str, folder: Path) -> None:
        self.folder = folder
        self.log = folder.with_suffix(".log")
        self.args = [
            *("-m", "evals", "simulate", "--suite", str(SUITES_DIR / f"{suite}.yaml")),
            *("--prompt", f"{slug}@{version}", "--as", email),
            *("--concurrency", str(CONCURRENCY), "--out", str(folder)),
        ]

    async def run(self) -> int:
        """Run to the end; the exit status (0 passed, 1 a required scenario failed, 2 could not run)."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            child = await asyncio.create_subprocess_exec(
                sys.executable, *self.args, cwd=REPO_ROOT, stdout=log, stderr=log
            )
            try:
                return await child.wait()
            except asyncio.CancelledError:
                child.terminate()  # the page went away: the run folder resumes next time
                raise

    def calls_done(self) -> int:
        """Calls written to the run folder so far."""
        samples = self.folder / "samples.jsonl"
        return sum(1 for _ in samples.open()) if samples.exists() else 0

    def failure(self) -> str:
        """The end of the child's output (why it could not run)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.strip().splitlines()[-6:])


class DraftCheck(pn.viewable.Viewer):
    """The "simulate before activating" panel of one prompt."""

    suite = param.Selector(default=None, objects=[], doc="the suite to run")
    version = param.Integer(default=None, allow_None=True, doc="the version to try")
    progress = param.Integer(default=-1, doc="share done in percent; -1 while idle")
    status = param.String(default="", doc="what the check is doing, or why it stopped")
    result = param.String(default="", doc="the verdict table, Markdown")

    def __init__(
        self, *, slug: str, active: int | None, versions: list[int], email: str, data_dir: Path
    ) -> None:
        """`versions`: the prompt's version numbers, newest first; `email`: the admin's, whom
        the runs are stored as; `data_dir`: where run folders go (`simulations/admin/`)."""
        suites = available_suites()
        super().__init__()
        self.param.suite.objects = suites
        self.suite = "smoke" if "smoke" in suites else (suites[0] if suites else None)
        self.slug, self.active, self.versions, self.email = slug, active, versions, email
        self.base = data_dir / "simulations" / "admin"
        self.version = versions[0] if versions else None

    async def run(self) -> None:
        """Run the suite on the active version and on `version`, then compare them."""
        if self.active is None or self.version is None or self.suite is None:
            self.status = "Pick a suite and a version; the prompt needs an active version."
            return
        if _one_at_a_time.locked():
            self.status = "Another check is running on this server; try again when it ends."
            return
        async with _one_at_a_time:
            self.result = ""
            day = datetime.now(UTC).strftime("%Y%m%d")
            runs = [
                SuiteRun(
                    suite=self.suite,
                    slug=self.slug,
                    version=number,
                    email=self.email,
                    folder=self.base / f"{self.suite}-{self.slug}-v{number}-{day}",
                )
                for number in (self.active, self.version)
            ]
            for run, number in zip(runs, (self.active, self.version), strict=True):
                self.status = f"Calling the agent with version {number} ({self.suite} suite)..."
                watcher = asyncio.create_task(self._watch(runs))
                try:
                    code = await run.run()
                finally:
                    watcher.cancel()
                if code == 2 or not (run.folder / "metrics.json").exists():
                    self.status = f"The suite could not run on version {number}:\n{run.failure()}"
                    self.progress = -1
                    return
            self.progress = 100
            rows = compare_runs(RunFolder(runs[0].folder), RunFolder(runs[1].folder))
            self.result = verdict_markdown(
                rows, active=self.active, draft=self.version, folders=[r.folder for r in runs]
            )
            self.status = f"Done: version {self.version} against the active version {self.active}."

    async def _watch(self, runs: list[SuiteRun]) -> None:
        assert self.suite is not None
        total = len(runs) * len(load_suite(SUITES_DIR / f"{self.suite}.yaml").scenarios)
        while True:
            done = sum(r.calls_done() for r in runs)
            self.progress = min(99, int(100 * done / max(total, 1)))
            await asyncio.sleep(1.0)

    def __panel__(self) -> pn.viewable.Viewable:
        suite = pn.widgets.Select.from_param(self.param.suite, name="Suite", width=150)
        version = pn.widgets.Select.from_param(
            self.param.version, name="Version to simulate", width=170
        )
        version.options = self.versions
        start = pn.widgets.Button(name="Simulate against the active version")
        run_on_click(start, self.run)

        @pn.depends(self.param.progress, self.param.status, self.param.result)
        def state(progress: int, status: str, result: str) -> pn.viewable.Viewable:
            parts: list[pn.viewable.Viewable] = []
            if 0 <= progress < 100:
                parts.append(pn.indicators.Progress(value=progress, max=100, width=300))
            if status:
                parts.append(pn.pane.Markdown(status.replace("\n", "  \n")))
            if result:
                parts.append(pn.pane.Markdown(result, name="simulation verdict"))
            return pn.Column(*parts, sizing_mode="stretch_width")

        return pn.Column(
            pn.pane.Markdown(
                "### Simulate before activating\nSimulated callers call the agent with the "
                "active version and with the version chosen; the difference of each measure "
                "comes with its 95% interval over the suite's scenarios."
            ),
            pn.FlexBox(suite, version, start),
            state,
            sizing_mode="stretch_width",
        )


def verdict_markdown(
    rows: list[MetricComparison], *, active: int, draft: int, folders: list[Path]
) -> str:
    """Each measure for the active version and the draft, their difference and the verdict."""
    lines = [
        f"| measure | active (v{active}) | v{draft} | difference, 95% interval | verdict |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.label} | {row.baseline.estimate:.3f} | {row.candidate.estimate:.3f} "
            f"| {format_interval(row.difference, signed=True)} | **{row.verdict}** |"
        )
    lines.append(
        "\nRuns (`python -m evals report` renders them, failed calls playable): "
        + ", ".join(f"`{folder}`" for folder in folders)
    )
    return "\n".join(lines)
