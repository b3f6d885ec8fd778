"""A run on disk: `run.json` (what ran), `samples.jsonl` (one row per scored sample), `metrics.json`.

Samples are appended batch by batch and fsynced, so a killed run keeps every
finished batch; a line cut short by the kill is dropped on resume. The folder
refuses to resume a different run (other task version, dataset or specs).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from workbench.config import REPO_ROOT
from workbench.db.models import EvalSample


class RunMismatch(ValueError):
    """The folder holds a run of another task, dataset or spec."""


@dataclass(frozen=True)
class RunInfo:
    """Identity of a run: what was measured, on what, with what."""

    run_id: UUID
    task: str
    task_version: str
    dataset_id: str
    spec: dict[str, Any]
    git_sha: str | None
    started_at: str

    def same_measurement(self, other: RunInfo) -> bool:
        """True when both describe the same task version, dataset and specs."""
        return (self.task, self.task_version, self.dataset_id, self.spec) == (
            other.task,
            other.task_version,
            other.dataset_id,
            other.spec,
        )


def git_sha() -> str | None:
    """The checkout's commit, if it is a git checkout."""
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def new_run_info(*, task: str, task_version: str, dataset_id: str, spec: dict[str, Any]) -> RunInfo:
    """A fresh run identity stamped with the git sha and the start time."""
    return RunInfo(
        run_id=uuid4(),
        task=task,
        task_version=task_version,
        dataset_id=dataset_id,
        spec=spec,
        git_sha=git_sha(),
        started_at=datetime.now(UTC).isoformat(),
    )


class RunFolder:
    """The files of one run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.info_path = path / "run.json"
        self.samples_path = path / "samples.jsonl"
        self.metrics_path = path / "metrics.json"

    def exists(self) -> bool:
        """Whether a run was started here."""
        return self.info_path.is_file()

    def read_info(self) -> RunInfo:
        """The run's identity."""
        raw = json.loads(self.info_path.read_text())
        return RunInfo(**{**raw, "run_id": UUID(raw["run_id"])})

    def start(self, info: RunInfo) -> RunInfo:
        """Create the folder for `info`, or return the stored identity when resuming the same run."""
        if self.exists():
            stored = self.read_info()
            if not stored.same_measurement(info):
                raise RunMismatch(
                    f"{self.path} holds run {stored.run_id} ({stored.task} v{stored.task_version} on "
                    f"{stored.dataset_id}); it differs from this one: use another --out folder"
                )
            return stored
        self.path.mkdir(parents=True, exist_ok=True)
        payload = {**info.__dict__, "run_id": str(info.run_id)}
        self._write_atomic(self.info_path, json.dumps(payload, indent=2, sort_keys=True))
        return info

    def samples(self) -> list[EvalSample]:
        """Stored rows (the last one wins for a repeated id); a cut-off last line is dropped."""
        if not self.samples_path.exists():
            return []
        rows: dict[str, EvalSample] = {}
        for line in self.samples_path.read_text(encoding="utf-8").splitlines():
            try:
                sample = EvalSample.model_validate_json(line)
            except ValueError:
                continue  # a line cut short by a kill; its batch is scored again
            rows[sample.sample_id] = sample
        return list(rows.values())

    def append(self, samples: list[EvalSample]) -> None:
        """Append a batch durably."""
        with self.samples_path.open("a", encoding="utf-8") as out:
            if out.tell() and not self._ends_with_newline():
                out.write("\n")  # after a cut-off line, start clean
            for sample in samples:
                out.write(sample.model_dump_json() + "\n")
            out.flush()
            os.fsync(out.fileno())

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """The run's corpus metrics."""
        self._write_atomic(self.metrics_path, json.dumps(metrics, indent=2, sort_keys=True))

    def read_metrics(self) -> dict[str, Any] | None:
        """Corpus metrics, if the run finished."""
        if not self.metrics_path.exists():
            return None
        metrics: dict[str, Any] = json.loads(self.metrics_path.read_text())
        return metrics

    def _ends_with_newline(self) -> bool:
        with self.samples_path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    @staticmethod
    def _write_atomic(path: Path, text: str) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(path)
