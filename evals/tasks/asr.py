"""`asr`: word and character error rates, edit counts, speed, and hallucination on no-speech clips.

Both sides pass the one text normaliser (`workbench.metrics.wer`). Rows whose
reference is the live transcript itself are left out unless asked for: scoring
a model against its own output says nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evals.stats import bootstrap_ci, ratio_of_sums
from evals.tasks.base import Task
from workbench.audio import AudioDecodeError
from workbench.db.models import EvalSample
from workbench.metrics.wer import error_rates, normalise
from workbench.models import ModelSpec, SpeechToText, create
from workbench_datasets.manifest import Manifest, ManifestRow


class AsrTask(Task[ManifestRow]):
    """Transcribe each clip with one STT spec; batch size comes from the runner."""

    name = "asr"
    version = "1"

    def __init__(
        self, *, spec: ModelSpec, manifest: Manifest, include_live_transcripts: bool = False
    ) -> None:
        rows = [
            r
            for r in manifest.rows
            if include_live_transcripts or r.reference_kind != "live_transcript"
        ]
        super().__init__(dataset_id=manifest.dataset_id, items=rows)
        self.manifest = manifest
        self.spec = spec
        self.include_live_transcripts = include_live_transcripts
        model = create(spec)
        if not isinstance(model, SpeechToText):
            raise TypeError(f"asr needs a speech-to-text spec, {spec.name} is {spec.kind}")
        self.model = model

    def item_id(self, item: ManifestRow) -> str:
        return item.id

    def spec_snapshot(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = {"stt": self.spec.snapshot()}
        if self.include_live_transcripts:
            # Labelled in the run (and on the dashboard): live transcripts are the
            # agent's own guess, so WER against them is not WER against the truth.
            snapshot["references"] = "human and live transcripts"
        return snapshot

    def load(self) -> None:
        self.model.load()

    async def score(self, batch: Sequence[ManifestRow]) -> list[EvalSample]:
        clips: list[np.ndarray] = []
        readable: list[ManifestRow] = []
        failed: list[EvalSample] = []
        for row in batch:
            try:
                clips.append(self.manifest.load_audio(row))
                readable.append(row)
            except (AudioDecodeError, OSError) as exc:
                failed.append(EvalSample(sample_id=row.id, reference=row.reference, error=str(exc)))
        transcripts = await self.model.transcribe_batch(clips) if clips else []
        scored: list[EvalSample] = []
        for row, t in zip(readable, transcripts, strict=True):
            try:
                metrics = _sample_metrics(row, t.text, t.audio_duration_s, t.inference_s)
            except ValueError as exc:  # e.g. a reference that normalises to nothing
                failed.append(EvalSample(sample_id=row.id, reference=row.reference, error=str(exc)))
                continue
            scored.append(
                EvalSample(
                    sample_id=row.id, reference=row.reference, hypothesis=t.text, metrics=metrics
                )
            )
        return scored + failed

    def summarise(self, samples: Sequence[EvalSample]) -> dict[str, Any]:
        ok = [s for s in samples if s.error is None]
        speech = [s for s in ok if s.metrics["speech"]]
        silent = [s for s in ok if not s.metrics["speech"]]
        out: dict[str, Any] = {
            "samples": len(samples),
            "errors": len(samples) - len(ok),
            "audio_s": sum(s.metrics["duration_s"] for s in ok),
        }
        inference_s = sum(s.metrics["inference_s"] for s in ok)
        out["rtfx"] = out["audio_s"] / inference_s if inference_s else None
        if speech:
            rates = error_rates(
                [s.reference or "" for s in speech], [s.hypothesis or "" for s in speech]
            )
            rows = np.array(
                [[s.metrics["word_errors"], s.metrics["reference_words"]] for s in speech]
            )
            ci = bootstrap_ci(rows, ratio_of_sums)
            out.update(
                wer=rates.wer,
                wer_ci95=[ci.low, ci.high],
                cer=rates.cer,
                substitutions=rates.substitutions,
                deletions=rates.deletions,
                insertions=rates.insertions,
                reference_words=rates.reference_words,
            )
        if silent:
            out["no_speech_clips"] = len(silent)
            out["hallucination_rate"] = sum(
                s.metrics["hallucinated_words"] > 0 for s in silent
            ) / len(silent)
            out["hallucinated_words"] = sum(s.metrics["hallucinated_words"] for s in silent)
        return out

    async def aclose(self) -> None:
        await self.model.aclose()


def _sample_metrics(
    row: ManifestRow, hypothesis: str, duration_s: float, inference_s: float
) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "speech": row.speech,
        "duration_s": duration_s,
        "inference_s": inference_s,
        "reference_kind": row.reference_kind,
    }
    if not row.speech:
        metrics["hallucinated_words"] = len(normalise(hypothesis).split())
        return metrics
    rates = error_rates([row.reference], [hypothesis])
    metrics.update(
        wer=rates.wer,
        cer=rates.cer,
        substitutions=rates.substitutions,
        deletions=rates.deletions,
        insertions=rates.insertions,
        reference_words=rates.reference_words,
        word_errors=rates.substitutions + rates.deletions + rates.insertions,
    )
    return metrics
