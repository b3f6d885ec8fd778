"""Content filtering of user input and agent output: a configurable policy, a verdict per turn.

The policy is a blocklist of words and phrases (matched on word boundaries,
case-insensitively) plus an optional classifier callable returning a score in
[0, 1]. `check` gives a verdict, recorded on the turn (`turns.filter_verdict`);
`redact` replaces blocked phrases in text the agent is about to speak.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["allow", "block", "redact"]


@dataclass(frozen=True)
class ContentPolicy:
    """What to refuse. `blocklist` entries are words or phrases; `classifier` scores text for harm."""

    blocklist: Sequence[str] = ()
    classifier: Callable[[str], float] | None = None
    threshold: float = 0.8
    notice: str = "Sorry, I can't help with that."
    _pattern: re.Pattern[str] | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        words = [re.escape(w.strip()) for w in self.blocklist if w.strip()]
        pattern = re.compile(r"\b(" + "|".join(words) + r")\b", re.IGNORECASE) if words else None
        object.__setattr__(self, "_pattern", pattern)

    def check(self, text: str) -> dict[str, Any]:
        """Verdict: {"action": "allow"|"block", "rule": ..., "score": ...}."""
        if self._pattern is not None and (match := self._pattern.search(text)):
            return {"action": "block", "rule": "blocklist", "match": match.group(0).lower()}
        if self.classifier is not None:
            score = float(self.classifier(text))
            if score >= self.threshold:
                return {"action": "block", "rule": "classifier", "score": round(score, 3)}
            return {"action": "allow", "score": round(score, 3)}
        return {"action": "allow"}

    def redact(self, text: str) -> tuple[str, dict[str, Any]]:
        """Text with blocked phrases replaced by "[redacted]", and the verdict."""
        if self._pattern is None or not self._pattern.search(text):
            return text, {"action": "allow"}
        return self._pattern.sub("[redacted]", text), {"action": "redact", "rule": "blocklist"}
