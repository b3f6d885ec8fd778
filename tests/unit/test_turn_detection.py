"""The live turn detector: LiveKit's local model, its threshold overruled by a finished transcript."""

from __future__ import annotations

import pytest
from livekit.agents.language import LanguageCode

from agent.settings import AgentSettings
from agent.turn_detection import LatestFinal, TranscriptAwareTurnDetector
from workbench.turn_taking import DEFAULT_SETTING

pytestmark = pytest.mark.unit


async def test_a_finished_transcript_lifts_the_threshold_and_speech_restores_it() -> None:
    latest = LatestFinal()
    stream = TranscriptAwareTurnDetector(latest, threshold=0.5).stream()
    try:
        english = LanguageCode("en-US")
        assert await stream.unlikely_threshold(english) == 0.5  # nothing final yet
        latest.text = "Turn off the kitchen lights please."
        assert await stream.unlikely_threshold(english) is None  # nothing holds the turn
        assert await stream.unlikely_threshold(None) is None
        latest.text = "Set an alarm for"
        assert await stream.unlikely_threshold(english) == 0.5
        latest.text = None  # the STT saw speech start again
        assert await stream.unlikely_threshold(english) == 0.5
        # Chosen on English speech: other languages keep LiveKit's calibrated threshold.
        latest.text = "Mach das Licht aus."
        german = await stream.unlikely_threshold(LanguageCode("de"))
        assert german is not None
        assert german != 0.5
    finally:
        await stream.aclose()


async def test_without_a_transcript_the_threshold_stands() -> None:
    stream = TranscriptAwareTurnDetector(None, threshold=0.36).stream()
    try:
        assert await stream.unlikely_threshold(LanguageCode("en")) == 0.36
    finally:
        await stream.aclose()


def test_the_agent_runs_the_labs_default() -> None:
    # The lab replays DEFAULT_SETTING as the live agent's; the agent applies the transcript
    # rule only at the least wait (a lifted threshold).
    knobs = AgentSettings()
    assert knobs.turn_threshold == DEFAULT_SETTING.unlikely_threshold
    assert knobs.finished_text == (DEFAULT_SETTING.text_done_delay_s is not None)
    assert DEFAULT_SETTING.text_done_delay_s in (None, DEFAULT_SETTING.min_delay_s)
    assert knobs.min_endpoint_s == DEFAULT_SETTING.min_delay_s
    assert knobs.max_endpoint_s == DEFAULT_SETTING.max_delay_s
