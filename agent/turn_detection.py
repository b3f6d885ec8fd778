"""LiveKit's audio turn model with our threshold, and the early transcript as a second opinion.

The turn model hears only the last 1.2 s of the user's audio. When it judges
the user unfinished (probability under the threshold) the session waits its
longest wait. With a `LatestFinal`, a finished transcript overrules it: when
the latest final transcript reads as a finished sentence
(`workbench.turn_taking.reads_finished`), the turn is not held, it ends after
the least wait like any turn the model judged finished. The turn-taking lab's
best setting uses it (README, "Turn taking"); the agent's default does not
(`WORKBENCH_AGENT_FINISHED_TEXT`).

livekit-agents decides the wait from the detector stream's probability and
`unlikely_threshold()` alone, asked once the prediction is in; so the
transcript speaks through that threshold: none (nothing is "unlikely") while
the transcript reads finished. The session asks again when a new final
transcript arrives, so the decision always reads the newest one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livekit.agents.inference import TurnDetector
from livekit.agents.language import LanguageCode

from workbench.turn_taking import reads_finished


@dataclass
class LatestFinal:
    """The user's latest final transcript in this session; None while they are speaking.

    The STT stream writes it (`WorkbenchSTT(latest=...)`): cleared when speech
    starts, set when a final is sent, so the text is never older than the pause
    being judged.
    """

    text: str | None = None


def unlikely_threshold(latest: LatestFinal | None, threshold: float) -> float | None:
    """The threshold under which the turn model's probability holds the turn: none when
    the latest transcript (if consulted) reads as a finished sentence."""
    if latest is not None and latest.text is not None and reads_finished(latest.text):
        return None
    return threshold


class TranscriptAwareTurnDetector(TurnDetector):
    """The local `v1-mini` turn model, its English threshold set and, given `latest`,
    overruled by a finished transcript."""

    def __init__(self, latest: LatestFinal | None, *, threshold: float) -> None:
        # The threshold is applied in `stream()`, not passed as LiveKit's override
        # (which logs a warning for every session).
        super().__init__(version="v1-mini")
        self._latest = latest
        self._threshold = threshold

    def stream(self, **kwargs: Any) -> Any:
        stream = super().stream(**kwargs)
        latest, threshold = self._latest, self._threshold
        calibrated = stream.unlikely_threshold

        async def judged(language: LanguageCode | None) -> float | None:
            # Both were chosen on English speech; other languages keep LiveKit's own.
            if language and not str(language).lower().startswith("en"):
                return await calibrated(language)
            return unlikely_threshold(latest, threshold)

        # One stream per session; its `unlikely_threshold` is the hook the session asks.
        stream.unlikely_threshold = judged  # type: ignore[method-assign]
        return stream
