"""The conversation page's text helpers and store, through their params."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from dashboards.pages.conversation import (
    DEFAULT_PROMPT,
    ConversationPage,
    language_note,
    stats_markdown,
    transcript_markdown,
    voice_note,
)

pytestmark = pytest.mark.unit


def test_transcript_marks_speakers_and_interim_text() -> None:
    text = transcript_markdown(
        [
            {"speaker": "user", "text": "What time is it?", "final": True},
            {"speaker": "agent", "text": "It is\nnoon", "final": False},
        ]
    )
    assert text == "**You:** What time is it?\n\n**Agent:** *It is noon*"
    assert "appears here" in transcript_markdown([])


def test_what_users_and_models_wrote_renders_as_text() -> None:
    """A reply carrying HTML or Markdown must show as those characters, never run or format."""
    attack = '<img src=x onerror="alert(1)"> **not bold** [link](javascript:alert(2))'
    markdown = transcript_markdown([{"speaker": "agent", "text": attack, "final": True}])
    # Rendered the way Panel's Markdown pane renders (markdown-it, inline HTML allowed).
    rendered = MarkdownIt("commonmark", {"html": True}).render(markdown)
    assert "<img" not in rendered
    assert "<a " not in rendered
    assert rendered.count("<strong>") == 1  # the speaker label only
    assert "&lt;img src=x onerror=" in rendered  # shown as the characters it is
    assert "**not bold**" in rendered


def test_stats_line() -> None:
    line = stats_markdown(
        {"rtt_ms": 12, "jitter_ms": 3, "packets_lost": 0, "packets_sent": 50},
        "connected",
        "listening",
    )
    assert (
        line
        == "Connection: **connected** · Agent: **listening** · RTT 12 ms · jitter 3 ms · lost 0 / 50 packets"
    )
    assert stats_markdown({}, "disconnected", "") == "Connection: **disconnected** · Agent: **—**"
    heard = [{"ordinal": 1, "heard_s": 1.5}, {"ordinal": 2, "heard_s": 2.25}]
    assert stats_markdown({}, "connected", "listening", heard).endswith("voice to voice 2.25 s")


def test_only_known_prompts_can_be_chosen() -> None:
    store = ConversationPage(session=None)
    assert store.prompt == DEFAULT_PROMPT
    with pytest.raises(ValueError, match="does not accept 'not-offered'"):
        store.prompt = "not-offered"


def test_hidden_latency_leaves_only_the_connection_and_the_agent_state() -> None:
    line = stats_markdown(
        {"rtt_ms": 12},
        "connected",
        "listening",
        [{"ordinal": 1, "heard_s": 0.9}],
        show_latency=False,
    )
    assert line == "Connection: **connected** · Agent: **listening**"


@pytest.mark.parametrize(
    ("wanted", "fixed", "noted"),
    [
        (None, "en", False),
        ("en-GB", "en", False),
        ("de", "en", True),
        ("de", None, False),  # a multilingual stack follows the setting
    ],
)
def test_a_language_the_stack_cannot_follow_is_said(
    wanted: str | None, fixed: str | None, noted: bool
) -> None:
    note = language_note(wanted, fixed)
    assert bool(note) == noted
    if noted:
        assert "recognises only 'en'" in note
        assert "('de')" in note


@pytest.mark.parametrize(
    ("wanted", "voices", "expected"),
    [
        (None, ["en-us", "en-gb-x-rp"], ""),
        ("en-gb-x-rp", ["en-us", "en-gb-x-rp"], ""),
        ("en-gb-x-rp", ["piper-joe-medium"], "it answers in 'piper-joe-medium'."),
        ("klingon", ["en-us", "en-gb-x-rp"], "'en-us' (it has en-us, en-gb-x-rp)"),
    ],
)
def test_a_voice_the_stack_does_not_speak_is_said(
    wanted: str | None, voices: list[str], expected: str
) -> None:
    note = voice_note(wanted, voices)
    assert (note == "") == (expected == "")
    assert expected in note


def test_the_status_line_says_whether_the_microphone_is_live_and_when_the_agent_left() -> None:
    assert "Microphone: **muted**" in stats_markdown(
        {}, "connected", "listening", microphone_on=False
    )
    assert "Microphone: **on**" in stats_markdown({}, "connected", "thinking", microphone_on=True)
    assert "Microphone" not in stats_markdown({}, "disconnected", "", microphone_on=False)
    assert "Agent: **thinking…**" in stats_markdown({}, "connected", "thinking")
    assert "Agent: **left the conversation**" in stats_markdown({}, "connected", "gone")
