"""The latency stages of a turn, defined once.

Each stage is a column of `public.turns` (seconds) and a field of `TurnDraft`; the
agent observes it as a Prometheus `stage` label; one side of the conversation
carries it (the user's turn for what happens while the caller is heard, the agent's
for what happens while it answers); Analytics reads its daily mean from the latency
rollup. The database models, the agent's metrics, the evals, the comparisons, the
plots and Analytics all read this table; a unit test refuses a stage's name written
as a string anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Stage:
    """One latency stage of a turn."""

    field: str  # the turn's column, in seconds
    label: str  # what plots and tables call it
    metric: str | None  # the agent's Prometheus `stage` label (None: not the agent's measure)
    side: Literal["user", "agent"]  # the turn that carries it
    rollup_column: str | None  # its turn-weighted daily mean in the latency rollup


END_OF_UTTERANCE = Stage(
    "eou_delay_s", "end of utterance", "end_of_utterance", "user", "eou_delay_mean_s"
)
SPEECH_TO_TEXT = Stage("stt_s", "speech to text", "stt", "user", "stt_mean_s")
LLM_FIRST_TOKEN = Stage(
    "llm_ttft_s", "LLM first token", "llm_first_token", "agent", "llm_ttft_mean_s"
)
TTS_FIRST_AUDIO = Stage(
    "tts_ttfb_s", "TTS first audio", "tts_first_audio", "agent", "tts_ttfb_mean_s"
)
# Voice to voice as the agent's clock has it: from the end of the caller's speech to
# the reply's first audio leaving the agent.
VOICE_TO_VOICE = Stage("v2v_s", "voice to voice", "voice_to_voice", "agent", None)
# Voice to voice as the caller's browser heard it (reported by the page, not the agent).
HEARD_VOICE_TO_VOICE = Stage("v2v_audio_s", "voice to voice, heard", None, "agent", None)

STAGES = (
    END_OF_UTTERANCE,
    SPEECH_TO_TEXT,
    LLM_FIRST_TOKEN,
    TTS_FIRST_AUDIO,
    VOICE_TO_VOICE,
    HEARD_VOICE_TO_VOICE,
)
# The parts voice to voice is made of, in the order they happen (stacked in plots).
PARTS = (END_OF_UTTERANCE, SPEECH_TO_TEXT, LLM_FIRST_TOKEN, TTS_FIRST_AUDIO)

FIELDS = tuple(stage.field for stage in STAGES)


def on_side(side: Literal["user", "agent"]) -> tuple[Stage, ...]:
    """The stages the `side` turn carries."""
    return tuple(stage for stage in STAGES if stage.side == side)
