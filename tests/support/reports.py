"""Eval run folders with known results, for report tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from evals.run_folder import RunFolder, new_run_info
from evals.simulation.units import CALLS_FOLDER
from workbench.db.models import EvalSample

HOSTILE = '<script>alert("x")</script>'


def asr_run(path: Path, *, errors: list[int], dataset: str = "clips@000000000001") -> RunFolder:
    """An asr run: one clip per entry of `errors` (word errors out of 10 words)."""
    folder = RunFolder(path)
    folder.start(
        new_run_info(
            task="asr",
            task_version="1",
            dataset_id=dataset,
            spec={"stt": {"name": path.name, "params": {"beam_size": 1}}},
        )
    )
    folder.append(
        [
            EvalSample(
                sample_id=f"clip-{i}",
                reference="the quick brown fox jumps over the lazy dog today",
                hypothesis=f"the quick brown fox {HOSTILE}" if n else "as said",
                metrics={
                    "word_errors": n,
                    "reference_words": 10,
                    "duration_s": 3.0,
                    "inference_s": 0.1 * (1 + n),
                    "wer": n / 10,
                },
            )
            for i, n in enumerate(errors)
        ]
    )
    total = sum(errors)
    folder.write_metrics({"wer": total / (10 * len(errors)), "samples": len(errors)})
    return folder


def simulation_run(path: Path, *, heard: dict[str, float], failing: set[str]) -> RunFolder:
    """A simulation run: one call per scenario in `heard` (its heard voice-to-voice), the
    `failing` ones failed with their audio kept, plus one call that could not be held."""
    folder = RunFolder(path)
    folder.start(
        new_run_info(task="simulation", task_version="1", dataset_id="smoke@0123456789ab", spec={})
    )
    rows = []
    for scenario, v2v in heard.items():
        failed = scenario in failing
        metrics = {
            "passed": 0.0 if failed else 1.0,
            "failed": [f"no_repeated_reply: {HOSTILE}"] if failed else [],
            "heard_v2v_s": [v2v, v2v + 0.2],
            "heard_v2v_mean_s": v2v + 0.1,
            "live_wer": 0.05,
            "relevance": 0.6,
            "max_reply_similarity": 0.4,
            "talk_over_pauses_s": 0.0,
            "dialogue": [{"caller": "What is the capital of France?", "agent": HOSTILE}],
            "checks": [],
        }
        if failed:
            audio = np.zeros((16_000, 2), np.float32)
            (path / CALLS_FOLDER).mkdir(parents=True, exist_ok=True)
            soundfile.write(path / CALLS_FOLDER / f"{scenario}-0.wav", audio, 16_000)
            metrics["audio"] = f"{scenario}-0.wav"
        rows.append(EvalSample(sample_id=f"{scenario}#0", metrics=metrics))
    rows.append(EvalSample(sample_id="unheld#0", error="CallFailed: no agent joined room x"))
    folder.append(rows)
    folder.write_metrics({"pass_rate": 0.5, "calls": len(rows)})
    return folder
