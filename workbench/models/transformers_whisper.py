"""Whisper through Hugging Face transformers: batched generate, fp16 + SDPA on CUDA."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from workbench.audio import SPEECH_RATE_HZ
from workbench.models.base import SpeechToText
from workbench.models.convert import whisper_ct2_to_transformers
from workbench.models.sources import resolve_source


class TransformersWhisperSTT(SpeechToText):
    """Any Whisper checkpoint by hub id or folder; a CTranslate2 folder is converted once.

    params: `batch_size` (8), `max_new_tokens` (128), `language`, `threads` (torch CPU threads).
    """

    def _load(self) -> None:
        import torch
        from transformers import AutoProcessor, WhisperForConditionalGeneration

        source = resolve_source(self.spec.model)
        if (Path(source) / "model.bin").exists() and not any(Path(source).glob("*.safetensors")):
            source = str(whisper_ct2_to_transformers(Path(source)))
        if self.device == "cpu":
            torch.set_num_threads(int(self.spec.params.get("threads", os.cpu_count() or 1)))
        self._dtype = {
            "auto": torch.float16 if self.device == "cuda" else torch.float32,
            "float32": torch.float32,
            "float16": torch.float16,
            "bfloat16": torch.bfloat16,
        }[self.spec.dtype if self.spec.dtype != "int8" else "auto"]
        self._processor: Any = AutoProcessor.from_pretrained(source, revision=self.spec.revision)
        self._model: Any = WhisperForConditionalGeneration.from_pretrained(
            source, revision=self.spec.revision, dtype=self._dtype, attn_implementation="sdpa"
        ).to(self.device)
        self._model.eval()
        self._multilingual = bool(getattr(self._model.generation_config, "is_multilingual", False))
        self._transcribe_batch([np.zeros(SPEECH_RATE_HZ, dtype=np.float32)], "en")  # warm-up

    def _transcribe_batch(
        self, clips: list[np.ndarray], language: str | None
    ) -> list[tuple[str, str | None]]:
        import torch

        batch_size = int(self.spec.params.get("batch_size", 8))
        language = language or self.spec.params.get("language")
        results: list[tuple[str, str | None]] = []
        for start in range(0, len(clips), batch_size):
            batch = clips[start : start + batch_size]
            # The feature extractor pads every clip to Whisper's 30 s window in one vectorised pass.
            features = self._processor.feature_extractor(
                [c if c.size else np.zeros(1600, dtype=np.float32) for c in batch],
                sampling_rate=SPEECH_RATE_HZ,
                return_tensors="pt",
            ).input_features.to(self.device, self._dtype)
            kwargs: dict[str, Any] = {
                "max_new_tokens": int(self.spec.params.get("max_new_tokens", 128))
            }
            if self._multilingual:
                kwargs.update(task="transcribe", language=language)
            with torch.inference_mode():
                ids = self._model.generate(features, **kwargs)
            texts = self._processor.batch_decode(ids, skip_special_tokens=True)
            results += [
                (t if c.size else "", language or ("en" if not self._multilingual else None))
                for t, c in zip(texts, batch, strict=True)
            ]
        return results
