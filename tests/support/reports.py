"""Eval run folders with known results, for report tests."""

from __future__ import annotations

from pathlib import Path

from evals.run_folder import RunFolder, new_run_info
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
