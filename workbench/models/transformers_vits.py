"""VITS-family text-to-speech through transformers (MMS-TTS and similar hub checkpoints)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from workbench.audio import to_int16
from workbench.models.base import TextToSpeech
from workbench.models.sources import resolve_source


class TransformersVitsTTS(TextToSpeech):
    """A `VitsModel` checkpoint by hub id (e.g. `facebook/mms-tts-eng`) or folder.

    params: `speaking_rate` (1.0), `noise_scale`, `seed` (for reproducible audio), `threads`.
    """

    def _load(self) -> None:
        import torch
        from transformers import AutoTokenizer, VitsModel

        source = resolve_source(self.spec.model)
        if self.device == "cpu":
            torch.set_num_threads(int(self.spec.params.get("threads", os.cpu_count() or 1)))
        self._tokenizer: Any = AutoTokenizer.from_pretrained(source, revision=self.spec.revision)
        self._model: Any = VitsModel.from_pretrained(source, revision=self.spec.revision).to(
            self.device
        )
        self._model.eval()
        for name in ("speaking_rate", "noise_scale", "noise_scale_duration"):
            if name in self.spec.params:
                setattr(self._model, name, float(self.spec.params[name]))
        self._synthesize("Ready.")  # warm-up

    @property
    def sample_rate_hz(self) -> int:
        return int(self._model.config.sampling_rate)

    def _synthesize(self, sentence: str) -> np.ndarray:
        import torch

        inputs = self._tokenizer(sentence, return_tensors="pt").to(self.device)
        if inputs["input_ids"].shape[-1] == 0:
            return np.zeros(0, dtype=np.int16)
        if "seed" in self.spec.params:
            torch.manual_seed(int(self.spec.params["seed"]))
        with torch.inference_mode():
            waveform = self._model(**inputs).waveform[0].float().cpu().numpy()
        return to_int16(waveform)
