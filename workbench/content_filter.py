"""Content filtering of user input and agent output: a configurable policy, a verdict per turn.

The policy is a blocklist of words and phrases (matched on word boundaries,
case-insensitively) plus an optional classifier callable returning a score in
[0, 1]. `check` gives a verdict, recorded on the turn (`turns.filter_verdict`);
`redact` replaces blocked phrases in text the agent is about to speak, and
`StreamRedactor` does so for a reply that arrives in pieces, where a phrase may be
split between two of them.
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
    _longest: int = field(init=False, default=0, repr=False)

    def __post_init__(self) -> None:
        words = [re.escape(w.strip()) for w in self.blocklist if w.strip()]
        pattern = re.compile(r"\b(" + "|".join(words) + r")\b", re.IGNORECASE) if words else None
        object.__setattr__(self, "_pattern", pattern)
        longest = max((len(w.strip()) for w in self.blocklist if w.strip()), default=0)
        object.__setattr__(self, "_longest", longest)

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


class StreamRedactor:
    """Redacts a reply that arrives in pieces, so a blocked phrase split between pieces is caught.

    Text is let through up to a space far enough from the end that no blocked phrase
    can still be arriving across it (the longest phrase plus one character, so that a
    word that merely begins like one is seen whole); the rest waits for the next piece
    or `flush`. Without a blocklist every piece passes at once, unchanged.
    """

    def __init__(self, policy: ContentPolicy) -> None:
        self._pattern = policy._pattern
        self._hold = policy._longest + 1 if policy._pattern is not None else 0
        self._pending = ""
        self.redacted = False  # something was replaced

    def feed(self, piece: str) -> str:
        """What of the reply so far may be spoken now, redacted."""
        if self._pattern is None:
            return piece
        self._pending += piece
        cut = self._safe_cut()
        released, self._pending = self._pending[:cut], self._pending[cut:]
        return self._redact(released)

    def flush(self) -> str:
        """The rest of the reply, redacted (at its end)."""
        rest, self._pending = self._pending, ""
        return self._redact(rest)

    def _safe_cut(self) -> int:
        assert self._pattern is not None
        limit = len(self._pending) - self._hold
        spaces = [m.start() for m in re.finditer(r"\s", self._pending[: max(limit, 0) + 1])]
        cut = spaces[-1] if spaces else 0
        for match in self._pattern.finditer(self._pending):
            if match.start() < cut < match.end():  # a phrase with spaces in it: keep it whole
                cut = match.start()
        return cut

    def _redact(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        redacted = self._pattern.sub("[redacted]", text)
        self.redacted = self.redacted or redacted != text
        return redacted
