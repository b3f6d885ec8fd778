"""Festival Lite (Debian's `flite`): CMU's small diphone/cluster-unit voices.

Voices unlike every other the project uses (`slt` a US woman, `rms` a US man,
`awb` a Scottish man), so speech from them tests recognition on voices the
models' settings were never chosen on.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from workbench.models.base import TextToSpeech


class FliteTTS(TextToSpeech):
    """`model` is the flite voice (`flite -lv` lists them: slt, rms, awb, kal16, ...).

    params: `duration_stretch` (1.0; above 1 speaks slower).
    """

    def _load(self) -> None:
        self._binary = shutil.which("flite")
        if self._binary is None:
            raise FileNotFoundError("flite is not installed: apt-get install flite")
        # An unknown -voice makes flite speak with its default voice and exit 0.
        listed = subprocess.run([self._binary, "-lv"], capture_output=True, text=True, check=False)
        voices = listed.stdout.split(":", 1)[-1].split()
        if self.spec.model not in voices:
            raise ValueError(f"flite has no voice {self.spec.model!r}; it has: {', '.join(voices)}")
        self._rate_hz = 0
        self._synthesize("Ready.")  # warm-up, checks the voice, learns the output rate

    @property
    def sample_rate_hz(self) -> int:
        return self._rate_hz

    def _synthesize(self, sentence: str) -> np.ndarray:
        stretch = float(self.spec.params.get("duration_stretch", 1.0))
        # flite writes only to a file ("play" and "none" are its other outputs).
        with tempfile.TemporaryDirectory(prefix="flite-") as folder:
            out = Path(folder) / "speech.wav"
            command = [
                str(self._binary),
                "-voice",
                self.spec.model,
                "--setf",
                f"duration_stretch={stretch:g}",
                "-t",
                sentence,
                "-o",
                str(out),
            ]
            done = subprocess.run(command, capture_output=True, check=False, timeout=60)
            if done.returncode != 0 or not out.exists():
                raise RuntimeError(
                    f"flite failed (voice {self.spec.model!r}): "
                    f"{done.stderr.decode(errors='replace').strip() or 'no audio written'}"
                )
            samples, self._rate_hz = sf.read(str(out), dtype="int16")
        return np.asarray(samples, dtype=np.int16)
