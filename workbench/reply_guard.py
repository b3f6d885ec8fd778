"""Keep a streamed reply from saying the caller's turn back or an earlier reply over again.

Small chat models parrot: simulated callers heard SmolLM2-135M answer "Hello
there, how are you today?" with the same words, and a second question with the
first answer again ("The capital of Japan is Tokyo."). A person hears that as a
broken agent. The guard watches the reply's opening as it streams:

- while the words so far are the opening of the caller's turn or of an earlier
  reply, they are held back (not spoken yet);
- once they leave every such opening, they and the rest are released as they come;
- if they complete one (the whole turn or reply, or `COPIED_RUN_WORDS` of its
  opening words), the draft is dropped and the reply is generated again, each
  attempt a little warmer (`retry_params`), so it can take another path.

Holding costs nothing in the common case (the first word already differs) and
at most `COPIED_RUN_WORDS` words otherwise; a copy later inside a reply is not
caught (the words are spoken by then). After the last attempt the draft is spoken
as it is: a repeated reply is better than silence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import Enum

from workbench.models.base import GenerationParams

# As the simulated callers' repetition check (evals.simulation.checks.REPEATED_RUN_WORDS):
# this many words copied from the start of the turn or an earlier reply is a copy.
COPIED_RUN_WORDS = 8
# Each retry samples this much warmer than the last (capped at MAX_RETRY_TEMPERATURE):
# at the spec's 0.3 a retry mostly takes the same path again.
RETRY_WARMING = 0.35
MAX_RETRY_TEMPERATURE = 1.0

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


class Verdict(Enum):
    HOLD = "hold"  # the draft may still be becoming a copy: keep it back
    RELEASE = "release"  # not a copy: speak what is held and everything after it
    RETRY = "retry"  # a copy: drop the draft and generate again


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (how openings are compared)."""
    return _WORD.findall(text.lower())


class ReplyGuard:
    """Judges one attempt's draft, piece by piece (see the module docstring)."""

    def __init__(self, said: str, earlier: Sequence[str]) -> None:
        self._openings = [w for w in (words(said), *map(words, earlier)) if w]
        self._draft = ""
        self.released = not self._openings

    def feed(self, piece: str) -> Verdict:
        """The verdict once `piece` is added to the draft."""
        if self.released:
            return Verdict.RELEASE
        self._draft += piece
        # The last word may be cut mid-way ("Tok" of "Tokyo"): judge complete words only.
        ended = self._draft[-1:] in " .,!?;:\n"
        complete = self._draft if ended else self._draft.rpartition(" ")[0]
        return self._judge(words(complete), finished=False)

    def finish(self) -> Verdict:
        """The verdict on a draft that ended while held (a short reply: all of it a copy?)."""
        if self.released:
            return Verdict.RELEASE
        return self._judge(words(self._draft), finished=True)

    def _judge(self, draft: list[str], *, finished: bool) -> Verdict:
        if not draft:
            return Verdict.RELEASE if finished else Verdict.HOLD
        following = [o for o in self._openings if o[: len(draft)] == draft]
        if any(len(draft) >= min(len(o), COPIED_RUN_WORDS) for o in following):
            return Verdict.RETRY
        if following and not finished:
            return Verdict.HOLD
        self.released = True
        return Verdict.RELEASE


def retry_params(params: GenerationParams, attempt: int) -> GenerationParams:
    """The sampling of attempt `attempt` (0 is the spec's own): warmer, with a fresh seed."""
    if attempt == 0:
        return params
    warmer = min(params.temperature + RETRY_WARMING * attempt, MAX_RETRY_TEMPERATURE)
    seed = None if params.seed is None else params.seed + attempt
    return params.model_copy(update={"temperature": max(warmer, params.temperature), "seed": seed})
