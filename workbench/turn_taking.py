"""When the agent takes its turn: the endpointing settings, the live default, and a turn's outcome.

The live agent (livekit-agents' AgentSession, agent/pipelines.py) ends a user turn
like this: Silero VAD reports end of speech after `vad_silence_s` of silence;
0.2 s into the pause LiveKit's audio end-of-turn model (`turn-detector-v1-mini`,
run locally) scores the last 1.2 s of the turn's audio; if that probability is
under `unlikely_threshold` the agent waits `max_delay_s` from the end of
speech, else `min_delay_s`; speech that starts again before then cancels the
commit; and a turn is never committed before its transcript exists. The agent
reads its defaults from `DEFAULT_SETTING`; the turn-taking lab
(evals/endpointing.py, the `turn_taking` eval task) replays recordings under a
grid of settings and reports each one's `TurnEnd`s.

The transcript can be a second opinion: when the turn model judges the user
unfinished but the early transcript `reads_finished`, wait `text_done_delay_s`
instead of the longest wait (the agent can apply it at the least wait, off by
default; README, "Turn taking", has what it measured).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A commit this much before the last audible sample cut the user off.
CUT_OFF_TOLERANCE_S = 0.05


@dataclass(frozen=True)
class EndpointSetting:
    """One endpointing configuration; the defaults are the live agent's."""

    vad_silence_s: float = 0.3
    min_delay_s: float = 0.3
    # Chosen on the lab's curve (README, "Turn taking"): livekit-agents' 3.0 s default
    # waits a second longer with no fewer cut-offs, even on 1.5 s pauses; 1.2 s would
    # cut off most of those.
    max_delay_s: float = 2.0
    # The mini model's English threshold in livekit-agents; None: VAD alone decides.
    unlikely_threshold: float | None = 0.36
    # The wait when the model says "unfinished" but the early transcript
    # `reads_finished`; None: the transcript is not consulted.
    text_done_delay_s: float | None = None

    @property
    def label(self) -> str:
        """Short, stable, sortable name, e.g. `vad0.3-min0.3-max3-eot0.36` (`-text0.6` with
        the transcript rule)."""
        model = "vad-only" if self.unlikely_threshold is None else f"eot{self.unlikely_threshold:g}"
        text = "" if self.text_done_delay_s is None else f"-text{self.text_done_delay_s:g}"
        return f"vad{self.vad_silence_s:g}-min{self.min_delay_s:g}-max{self.max_delay_s:g}-{model}{text}"


# The live agent's. The lab's best (a stricter threshold, 0.5, overruled when the
# transcript reads finished) beat this on every lab set but answered later on the voice
# bench's recordings (README, "Turn taking"), so it stays a knob
# (WORKBENCH_AGENT_TURN_THRESHOLD, WORKBENCH_AGENT_FINISHED_TEXT).
DEFAULT_SETTING = EndpointSetting()


def setting_grid(
    vad_silence_s: tuple[float, ...] = (0.2, 0.3, 0.5),
    min_delay_s: tuple[float, ...] = (0.0, 0.3),
    max_delay_s: tuple[float, ...] = (0.8, 1.2, 2.0, 3.0),
    unlikely_threshold: tuple[float | None, ...] = (None, 0.2, 0.36, 0.5),
    text_done_delay_s: tuple[float | None, ...] = (None,),
) -> list[EndpointSetting]:
    """Every combination (VAD-only settings ignore max_delay and the transcript rule, so
    they appear once per min)."""
    grid = {
        EndpointSetting(
            v,
            lo,
            hi if t is not None else DEFAULT_SETTING.max_delay_s,
            t,
            text if t is not None else None,
        )
        for v in vad_silence_s
        for lo in min_delay_s
        for hi in max_delay_s
        for t in unlikely_threshold
        for text in text_done_delay_s
        if hi >= lo and (text is None or lo <= text < hi)
    }
    grid.add(DEFAULT_SETTING)
    return sorted(grid, key=lambda s: s.label)


# Words after which an English sentence goes on: a transcript ending in one is not done.
_GOES_ON = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "so",
        "to",
        "of",
        "for",
        "with",
        "from",
        "in",
        "on",
        "at",
        "by",
        "about",
        "into",
        "as",
        "than",
        "that",
        "which",
        "who",
        "if",
        "because",
        "my",
        "your",
        "our",
        "their",
        "his",
        "her",
        "its",
        "is",
        "are",
        "was",
        "were",
        "be",
        "um",
        "uh",
        "er",
    ]
)


def reads_finished(transcript: str) -> bool:
    """Whether a transcript reads as a finished sentence: it ends with `.`, `?` or `!`
    (Whisper punctuates), not an ellipsis, and not with a word a sentence goes on after."""
    text = transcript.strip()
    if not text.endswith((".", "?", "!")) or text.endswith(".."):
        return False
    last = re.sub(r"[^a-z']", "", text.split()[-1].lower())
    return last not in _GOES_ON


@dataclass(frozen=True)
class TurnEnd:
    """Where the agent would take its turn in one clip (times from the clip's start)."""

    speech_end_s: float  # the last audible sample: where the user really finished
    committed_s: float  # when the agent would take the turn
    eot_probability: float | None  # the turn model's score behind that commit

    @property
    def delay_s(self) -> float:
        """Seconds from the end of speech to the commit (negative: the user was cut off)."""
        return float(self.committed_s - self.speech_end_s)

    @property
    def cut_off(self) -> bool:
        """The agent would have replied while the user still had words to say."""
        return bool(self.committed_s < self.speech_end_s - CUT_OFF_TOLERANCE_S)
