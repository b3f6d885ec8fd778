"""What a simulated call was, as heard by its caller, and the deterministic checks that judge it.

Every time is on the call's clock (seconds since the caller joined) and as the
caller heard it: when its words left its microphone, when the agent's audio
arrived. The checks read a `CallRecord` and the similarity matrices the caller
computed with the suite's sentence embedder; each gives a `CheckResult` whose
`detail` says what failed in words a researcher can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from evals.simulation.suite import Scenario
from workbench.metrics.wer import normalise

# Agent audio shorter than this inside a caller's turn is a click or an echo, not speech.
TALK_OVER_MIN_S = 0.2


@dataclass
class CallTurn:
    """One caller turn and the agent's reply to it, as the caller heard them."""

    said: str  # the caller's words (ground truth for the agent's STT)
    started_s: float  # the turn's first sample left the caller
    words_end_s: float  # its last word did
    pauses: list[tuple[float, float]] = field(default_factory=list)
    reply_at_s: float | None = None  # the reply's first audible audio arrived
    reply_end_s: float | None = None  # its last audible audio did
    reply_text: str = ""  # the reply, transcribed by the suite's listening STT
    agent_over_turn_s: float = 0.0  # agent audio heard while this turn was being spoken
    agent_over_pauses_s: float = 0.0  # ... of it, during the turn's own pauses
    barged_in: bool = False  # this turn was spoken over the agent's previous reply
    agent_yield_s: float | None = None  # after a barge-in, until the agent fell silent
    line: dict[str, float] = field(default_factory=dict)  # measured SNR, level, rate

    @property
    def heard_voice_to_voice_s(self) -> float | None:
        """From the caller's last word to the reply's first audio, as heard."""
        return None if self.reply_at_s is None else self.reply_at_s - self.words_end_s


@dataclass
class CallRecord:
    """A whole simulated call."""

    scenario: str
    room: str = ""
    conversation_id: str | None = None
    turns: list[CallTurn] = field(default_factory=list)
    stored_caller_text: str = ""  # what the agent's STT stored of the caller, all turns
    ended_by: str = "caller"  # caller | agent | turn limit
    audio: np.ndarray | None = None  # the call as heard: (samples, 2) caller left, agent right


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict."""

    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class Similarities:
    """Cosine similarities from the suite's sentence embedder."""

    replies: np.ndarray  # reply i to reply j
    relevance: np.ndarray  # each caller turn to its reply


def _contains(text: str, phrase: str) -> bool:
    """`phrase` is in `text` ("rain" in "rainy"), after Whisper's normaliser or only lower-cased.

    The normaliser unifies spellings ("four" / "4") but rewrites some numbers away
    ("142 million" becomes "142000000"): a mention found either way counts.
    """
    return any(form(phrase) in form(text) for form in (normalise, _plain))


def _plain(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower()))


def check_call(call: CallRecord, scenario: Scenario, sims: Similarities) -> list[CheckResult]:
    """Every check the scenario asks for, on `call`; an unanswered turn always fails."""
    expect = scenario.expect
    results = [_answered(call)]
    for i, (turn, script) in enumerate(zip(call.turns, scenario.turns, strict=False), start=1):
        results.extend(_turn_mentions(i, turn, script.expect.mentions, script.expect.mentions_any))
        results.extend(_not_mentions(f"turn {i}", [turn], script.expect.not_mentions))
    results.extend(_not_mentions("call", call.turns, expect.not_mentions))
    if expect.no_repeated_reply:
        results.append(no_repeated_reply(call, sims.replies, expect.near_duplicate_similarity))
    if expect.answers_within_s is not None:
        results.append(answers_within(call, expect.answers_within_s))
    if expect.no_talk_over_pauses:
        results.append(no_talk_over_pauses(call))
    if expect.no_echo:
        results.append(no_echo(call))
    if expect.ends_within_turns is not None:
        n = len(call.turns)
        results.append(
            CheckResult(
                "ends_within_turns",
                n <= expect.ends_within_turns and call.ended_by != "turn limit",
                f"the call took {n} caller turns (ended by {call.ended_by}); "
                f"at most {expect.ends_within_turns} expected",
            )
        )
    if expect.min_relevance is not None:
        results.append(relevant(sims.relevance, expect.min_relevance))
    return results


def _answered(call: CallRecord) -> CheckResult:
    silent = [
        i
        for i, t in enumerate(call.turns, start=1)
        if t.reply_at_s is None and not _barged_over(call, i)
    ]
    return CheckResult(
        "every_turn_answered",
        bool(call.turns) and not silent,
        f"no reply heard to caller turn(s) {silent}" if silent else "",
    )


def _barged_over(call: CallRecord, turn_number: int) -> bool:
    """Whether the caller's next turn cut this turn's reply short on purpose."""
    return turn_number < len(call.turns) and call.turns[turn_number].barged_in


def _turn_mentions(
    i: int, turn: CallTurn, every: list[str], any_of: list[str]
) -> list[CheckResult]:
    results = []
    missing = [p for p in every if not _contains(turn.reply_text, p)]
    if every:
        results.append(
            CheckResult(
                f"turn {i} mentions",
                not missing,
                f"reply {turn.reply_text!r} lacks {missing}" if missing else "",
            )
        )
    if any_of:
        hit = any(_contains(turn.reply_text, p) for p in any_of)
        results.append(
            CheckResult(
                f"turn {i} mentions one of",
                hit,
                "" if hit else f"reply {turn.reply_text!r} mentions none of {any_of}",
            )
        )
    return results


def _not_mentions(where: str, turns: list[CallTurn], phrases: list[str]) -> list[CheckResult]:
    if not phrases:
        return []
    found = [(p, t.reply_text) for t in turns for p in phrases if _contains(t.reply_text, p)]
    return [
        CheckResult(
            f"{where} does not mention",
            not found,
            "; ".join(f"{p!r} in {text!r}" for p, text in found),
        )
    ]


# Two texts sharing a run of this many words (normalised) say the same thing over: a
# restated fact ("the capital of Japan is Tokyo", 6 words) is not, a parroted clause is.
REPEATED_RUN_WORDS = 8


def shared_run(a: str, b: str) -> int:
    """The longest run of consecutive words two texts share (after normalisation)."""
    x, y = normalise(a).split(), normalise(b).split()
    best = 0
    previous = [0] * (len(y) + 1)
    for i in range(1, len(x) + 1):
        current = [0] * (len(y) + 1)
        for j in range(1, len(y) + 1):
            if x[i - 1] == y[j - 1]:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def no_repeated_reply(call: CallRecord, similarity: np.ndarray, threshold: float) -> CheckResult:
    """No reply repeats an earlier one: the same words, a near-duplicate by meaning, or a
    long run of the same words (REPEATED_RUN_WORDS)."""
    texts = [normalise(t.reply_text) for t in call.turns]
    repeats = []
    for j in range(len(texts)):
        for i in range(j):
            if not texts[i] or not texts[j]:
                continue
            run = shared_run(texts[i], texts[j])
            if texts[i] == texts[j] or similarity[i, j] >= threshold or run >= REPEATED_RUN_WORDS:
                repeats.append(
                    f"reply {j + 1} repeats reply {i + 1} (similarity {similarity[i, j]:.2f}, "
                    f"{run} words in a row): {call.turns[j].reply_text!r}"
                )
                break
    return CheckResult("no_repeated_reply", not repeats, "; ".join(repeats))


def answers_within(call: CallRecord, limit_s: float) -> CheckResult:
    """Every reply began within `limit_s` of the caller's last word, as heard."""
    late = [
        f"turn {i}: {t.heard_voice_to_voice_s:.2f} s"
        for i, t in enumerate(call.turns, start=1)
        if t.heard_voice_to_voice_s is not None and t.heard_voice_to_voice_s > limit_s
    ]
    return CheckResult("answers_within_s", not late, f"later than {limit_s} s: {', '.join(late)}")


def no_talk_over_pauses(call: CallRecord) -> CheckResult:
    """The agent stayed silent through the caller's pauses inside a turn."""
    over = [
        f"turn {i}: {t.agent_over_pauses_s:.1f} s of agent audio in its pauses"
        for i, t in enumerate(call.turns, start=1)
        if t.agent_over_pauses_s >= TALK_OVER_MIN_S
    ]
    return CheckResult("no_talk_over_pauses", not over, "; ".join(over))


def no_echo(call: CallRecord) -> CheckResult:
    """No reply says the caller's turn back: the whole of it first, or a long run of its words."""
    echoes = [
        f"turn {i}: {t.reply_text!r}"
        for i, t in enumerate(call.turns, start=1)
        if normalise(t.said)
        and (
            normalise(t.reply_text).startswith(normalise(t.said))
            or shared_run(t.said, t.reply_text) >= REPEATED_RUN_WORDS
        )
    ]
    return CheckResult("no_echo", not echoes, "the caller's words said back: " + "; ".join(echoes))


def relevant(relevance: np.ndarray, minimum: float) -> CheckResult:
    """The replies' mean similarity to the caller turns they answer is at least `minimum`."""
    mean = float(np.mean(relevance)) if relevance.size else 0.0
    return CheckResult(
        "min_relevance", mean >= minimum, f"mean relevance {mean:.2f}, at least {minimum} expected"
    )
