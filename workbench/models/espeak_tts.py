"""eSpeak NG (Debian's `espeak-ng`): a formant synthesiser, very fast, robotic.

Useful for synthetic test speech in many languages and as a CPU fallback voice;
ASR reads it worse than natural speech, which makes it a harder test set.
"""

from __future__ import annotations

import shutil
import struct
import subprocess

import numpy as np

from workbench.models.base import TextToSpeech

_HEADER_BYTES = 44


class EspeakTTS(TextToSpeech):
    """`model` is the espeak-ng voice (e.g. `en-us`).

    params: `words_per_minute` (175), `pitch` (0-99, 50), `amplitude` (0-200, 100),
    `voices` (the voices offered, `model` first: e.g. `[en-us, en-us+f3, en-gb-x-rp]`).
    """

    def _load(self) -> None:
        listed = self.spec.params.get("voices")
        if listed and listed[0] != self.spec.model:
            raise ValueError(
                f"{self.spec.name}: params.voices must start with the default voice "
                f"{self.spec.model!r} (the spec's model), not {listed[0]!r}"
            )
        self._binary = shutil.which("espeak-ng")
        if self._binary is None:
            raise FileNotFoundError("espeak-ng is not installed: apt-get install espeak-ng")
        self._rate_hz = 0
        self._synthesize("Ready.")  # warm-up, and learn the output rate

    @property
    def sample_rate_hz(self) -> int:
        return self._rate_hz

    def _synthesize(self, sentence: str) -> np.ndarray:
        return self._synthesize_in(sentence, voice=self.spec.model)

    def _synthesize_in(self, sentence: str, *, voice: str) -> np.ndarray:
        params = self.spec.params
        command = [
            str(self._binary),
            "-v",
            voice,
            "-s",
            str(int(params.get("words_per_minute", 175))),
            "-p",
            str(int(params.get("pitch", 50))),
            "-a",
            str(int(params.get("amplitude", 100))),
            "--stdout",
            # `--` so a sentence starting with "-" is text, not an option.
            "--",
            sentence,
        ]
        done = subprocess.run(command, capture_output=True, check=False, timeout=60)
        if done.returncode != 0 or done.stdout[:4] != b"RIFF":
            raise RuntimeError(
                f"espeak-ng failed (voice {voice!r}): {done.stderr.decode(errors='replace').strip()}"
            )
        # Streamed wav: the header's lengths are placeholders, so read the rate and skip it.
        (self._rate_hz,) = struct.unpack("<I", done.stdout[24:28])
        return np.frombuffer(done.stdout[_HEADER_BYTES:], dtype="<i2").copy()
