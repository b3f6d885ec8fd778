"""Whisper through CTranslate2 (faster-whisper): int8 on CPU, float16 on CUDA."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from workbench.models.base import SpeechToText
from workbench.models.sources import resolve_source


class FasterWhisperSTT(SpeechToText):
    """Any CTranslate2 Whisper checkpoint (a folder, or a hub id such as `Systran/faster-whisper-small`).

    params: `beam_size` (1), `language`, `cpu_threads` (all cores), `no_speech_threshold`
    (0.6: segments Whisper thinks are not speech are dropped, against hallucinations on
    silence), `batch_size` (> 1 uses the batched pipeline, for replays on GPU).
    """

    def _load(self) -> None:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        compute_type = (
            self.spec.dtype
            if self.spec.dtype != "auto"
            else ("int8" if self.device == "cpu" else "float16")
        )
        self._params: dict[str, Any] = dict(self.spec.params)
        self._model = WhisperModel(
            resolve_source(self.spec.model),
            device=self.device,
            compute_type=compute_type,
            cpu_threads=int(self._params.get("cpu_threads", os.cpu_count() or 1)),
            revision=self.spec.revision,
        )
        batch_size = int(self._params.get("batch_size", 1))
        self._batched = BatchedInferencePipeline(self._model) if batch_size > 1 else None
        self._transcribe_batch([np.zeros(16_000, dtype=np.float32)], "en")  # warm-up

    def _transcribe_one(self, clip: np.ndarray, language: str | None) -> tuple[str, str | None]:
        if clip.size == 0:
            return "", language
        options = {
            "language": language or self._params.get("language"),
            "beam_size": int(self._params.get("beam_size", 1)),
            "condition_on_previous_text": False,
            "without_timestamps": True,
        }
        if self._batched is not None:
            segments, info = self._batched.transcribe(
                clip, batch_size=int(self._params["batch_size"]), **options
            )
        else:
            segments, info = self._model.transcribe(clip, **options)
        threshold = float(self._params.get("no_speech_threshold", 0.6))
        text = "".join(s.text for s in segments if s.no_speech_prob < threshold)
        return text, info.language

    def _transcribe_batch(
        self, clips: list[np.ndarray], language: str | None
    ) -> list[tuple[str, str | None]]:
        return [self._transcribe_one(clip, language) for clip in clips]
