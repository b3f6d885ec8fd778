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

    params: `words_per_minute` (175), `pitch` (0-99, 50), `amplitude` (0-200, 100).
    """

    def _load(self) -> None:
        self._binary = shutil.which("espeak-ng")
        if self._binary is None:
            raise FileNotFoundError("espeak-ng is not installed: apt-get install espeak-ng")
        self._rate_hz = 0
        self._synthesize("Ready.")  # warm-up, and learn the output rate

    @property
    def sample_rate_hz(self) -> int:
        return self._rate_hz

    def _synthesize(self, sentence: str) -> np.ndarray:
        params = self.spec.params
        command = [
            str(self._binary),
            "-v",
            self.spec.model,
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
                f"espeak-ng failed (voice {self.spec.model!r}): {done.stderr.decode(errors='replace').strip()}"
            )
        # Streamed wav: the header's lengths are placeholders, so read the rate and skip it.
        (self._rate_hz,) = struct.unpack("<I", done.stdout[24:28])
        return np.frombuffer(done.stdout[_HEADER_BYTES:], dtype="<i2").copy()
