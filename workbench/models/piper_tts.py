"""Piper (VITS exported to ONNX): fast CPU text-to-speech."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workbench.models.base import TextToSpeech
from workbench.models.sources import resolve_source


class PiperTTS(TextToSpeech):
    """A Piper voice: `model` is the `.onnx` file (its `.onnx.json` config beside it).

    params: `speaker_id`, `length_scale` (< 1 speaks faster), `noise_scale`, `noise_w_scale`, `volume`.
    """

    def _load(self) -> None:
        from piper import PiperVoice, SynthesisConfig

        path = Path(resolve_source(self.spec.model))
        if path.suffix != ".onnx":
            raise ValueError(f"{self.spec.name}: a Piper model is an .onnx file, got {path.name}")
        self._voice: Any = PiperVoice.load(
            path, config_path=path.with_suffix(".onnx.json"), use_cuda=self.device == "cuda"
        )
        params = self.spec.params
        self._config = SynthesisConfig(
            speaker_id=params.get("speaker_id"),
            length_scale=params.get("length_scale"),
            noise_scale=params.get("noise_scale"),
            noise_w_scale=params.get("noise_w_scale"),
            volume=float(params.get("volume", 1.0)),
        )
        self._synthesize("Ready.")  # warm-up

    @property
    def sample_rate_hz(self) -> int:
        return int(self._voice.config.sample_rate)

    def _synthesize(self, sentence: str) -> np.ndarray:
        chunks = [
            chunk.audio_int16_array for chunk in self._voice.synthesize(sentence, self._config)
        ]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
