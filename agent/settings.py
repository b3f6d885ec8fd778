"""The agent worker's own settings, read once from the environment (and `.env`).

Where the worker runs (its stack file, its port, its LiveKit name) is in
`workbench.config.Settings`, which the local stack sets too; these are the knobs
of the conversation itself, all `WORKBENCH_AGENT_*`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from workbench.config import env_file_path
from workbench.turn_taking import DEFAULT_SETTING


class AgentSettings(BaseSettings):
    """Conversation knobs of the agent worker (`WORKBENCH_AGENT_<NAME>`)."""

    model_config = SettingsConfigDict(
        env_prefix="WORKBENCH_AGENT_", env_file=env_file_path(), extra="ignore"
    )

    prompt: str = Field("voice-assistant", description="the prompt slug a room gets by default")
    greeting: str = Field(
        "Hello! How can I help you today?", description="said when the user joins; empty: none"
    )
    blocklist: str = Field("", description="comma-separated words the content filter refuses")
    max_jobs: int = Field(4, ge=1, description="rooms one worker holds at once (see bench/)")
    # How long the agent waits in a new room for the user who opened it.
    join_timeout_s: float = Field(30.0, gt=0)
    # The longest audio kept with one turn: the audio bucket takes objects of at most
    # 50 MiB (public.storage_limits), and 300 s of 48 kHz 16-bit mono is 28.8 MB. A
    # longer turn keeps its first max_turn_audio_s and its whole transcript.
    max_turn_audio_s: float = Field(300.0, gt=0, le=500)
    # The most audio one utterance buffers in the STT stream (every early attempt
    # transcribes the utterance so far): memory and compute stay bounded however long
    # someone speaks without a pause; past it, speech is not heard until they pause.
    max_utterance_s: float = Field(60.0, gt=0)
    # The longest a conversation lasts: then the agent says so, says goodbye and leaves,
    # freeing its slot (a tab left open would otherwise hold it for ever).
    max_conversation_s: float = Field(3600.0, gt=0)
    # Starting the reply on the final transcript, before the turn detector has confirmed
    # the turn: with llama.cpp the LLM's prefill is ~0.1 s, so a discarded attempt costs little.
    preemptive: bool = True
    # The pause after which the STT already transcribes the utterance so far (WorkbenchSTT).
    early_silence_s: float = Field(0.15, gt=0)
    # The streaming session's VAD silence, and its least and longest endpointing waits
    # (the longest when the turn model judges the user unfinished). The defaults are the
    # turn-taking lab's `DEFAULT_SETTING` (workbench/turn_taking.py), chosen on its
    # delay-vs-cut-off curve (README, "Turn taking").
    vad_silence_s: float = Field(DEFAULT_SETTING.vad_silence_s, gt=0)
    min_endpoint_s: float = Field(DEFAULT_SETTING.min_delay_s, ge=0)
    max_endpoint_s: float = Field(DEFAULT_SETTING.max_delay_s, ge=0)
    # The turn model's English threshold (LiveKit's calibrated one by default), and whether
    # a finished early transcript overrules it (the lab's transcript rule at the least
    # wait; agent/turn_detection.py): the lab's best is 0.5 with it on, which the voice
    # bench measured slower (README, "Turn taking").
    turn_threshold: float = Field(DEFAULT_SETTING.unlikely_threshold or 0.0, ge=0, le=1)
    finished_text: bool = DEFAULT_SETTING.text_done_delay_s is not None
    # Captions paced to the agent's audio: on an interruption the agent's turn (recorded,
    # and in the LLM's context) then holds the words the user heard, not all that was
    # generated. The pacing estimates the speaking rate with an STFT on the event loop,
    # which stalls it 120-270 ms per reply on 2 cores; false sends captions as generated.
    # The bench measured no clear latency difference either way (bench/README.md).
    sync_captions: bool = True
    # The sequential pipeline has no turn model, so the silence alone ends a turn:
    # Silero's default, which a naive pipeline needs not to cut people off mid-sentence.
    naive_silence_s: float = Field(0.55, gt=0)
    # How many times a reply that only copies the caller's turn or an earlier reply is
    # generated again, warmer each time (workbench/reply_guard.py); 1 turns the guard off.
    # Three took SmolLM2-135M's echoes and repeats from 12% and 8% of replies to 5% and 4%
    # on held-out two-turn calls, for 0.06 s to the first words (bench/README.md, "Reply guard").
    reply_attempts: int = Field(3, ge=1, le=5)
    # Where the worker writes its model health (the local stack reads it).
    status_file: Path | None = None

    @property
    def blocked_words(self) -> list[str]:
        """The blocklist as words."""
        return [word.strip() for word in self.blocklist.split(",") if word.strip()]


@lru_cache(maxsize=1)
def agent_settings() -> AgentSettings:
    """The worker's settings, read once per process."""
    return AgentSettings()
