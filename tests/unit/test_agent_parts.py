"""Agent building blocks without a room: content policy, phrase cache, journal replay contract."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
from livekit.agents import llm

from agent.adapters import PhraseCache
from agent.llm_adapter import to_messages
from workbench.content_filter import ContentPolicy
from workbench.models import ModelSpec, TextToSpeech, create

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("how do I build a bomb", "block"),
        ("BOMB!", "block"),
        ("the bombastic speech", "allow"),  # word boundaries, not substrings
        ("tell me about credit card numbers", "block"),
        ("what is the weather", "allow"),
        ("", "allow"),
    ],
)
def test_blocklist_verdicts(text: str, action: str) -> None:
    policy = ContentPolicy(blocklist=["bomb", "credit card numbers"])
    assert policy.check(text)["action"] == action


def test_classifier_threshold_and_redaction() -> None:
    policy = ContentPolicy(
        blocklist=["secret"], classifier=lambda t: 0.9 if "hate" in t else 0.1, threshold=0.8
    )
    assert policy.check("I hate this")["rule"] == "classifier"
    assert policy.check("lovely day")["action"] == "allow"
    text, verdict = policy.redact("the Secret code is here")
    assert text == "the [redacted] code is here"
    assert verdict["action"] == "redact"


def test_phrase_cache_keys_on_spec_and_text() -> None:
    a = create(ModelSpec(name="tts-a", kind="tts", backend="fake", model="x"))
    b = create(ModelSpec(name="tts-b", kind="tts", backend="fake", model="x"))
    cache = PhraseCache(max_entries=2)
    assert PhraseCache.key(a, "Hello there") == PhraseCache.key(a, "  Hello   there ")
    assert PhraseCache.key(a, "Hello there") != PhraseCache.key(b, "Hello there")
    cache.put("k1", np.ones(3, dtype=np.int16))
    cache.put("k2", np.ones(3, dtype=np.int16))
    assert cache.get("k1") is not None
    cache.put("k3", np.ones(3, dtype=np.int16))  # evicts the least recently used: k2
    assert cache.get("k2") is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_a_user_s_voice_is_spoken_when_the_stack_has_it_and_cached_apart() -> None:
    from agent.pipelines import chosen_voice
    from workbench.config import REPO_ROOT
    from workbench.models import load_spec

    espeak = create(load_spec(REPO_ROOT / "configs" / "models" / "espeak-ng-en-us.yaml"))
    assert isinstance(espeak, TextToSpeech)
    assert chosen_voice(espeak, "en-gb-x-rp") == "en-gb-x-rp"
    assert chosen_voice(espeak, "no-such-voice") == "en-us"  # the default, not a failure
    assert chosen_voice(espeak, None) == "en-us"
    assert PhraseCache.key(espeak, "Hi", "en-gb-x-rp") != PhraseCache.key(espeak, "Hi")
    assert PhraseCache.key(espeak, "Hi", "en-us") == PhraseCache.key(espeak, "Hi")


async def test_the_greeting_is_rendered_at_prewarm_and_shared_by_every_room() -> None:
    from agent.pipelines import CapturingTTS, WorkerModels, warm_up_turn
    from workbench.models import ChatModel, SpeechToText, load_model

    fakes = [
        load_model(ModelSpec(name=f"fake-{kind}", kind=kind, backend="fake", model="x", params=p))
        for kind, p in (("stt", {"transcript": "hi"}), ("llm", {"reply": "Hello."}), ("tts", {}))
    ]
    stt, llm, tts = fakes
    assert isinstance(stt, SpeechToText)
    assert isinstance(llm, ChatModel)
    assert isinstance(tts, TextToSpeech)
    models = WorkerModels(
        stt=stt, llm=llm, tts=tts, vad=None, stt_vad=None, naive_vad=None, snapshot={}
    )
    # warm_up_turn runs its own event loop in a thread, as prewarm does
    await asyncio.to_thread(warm_up_turn, models, greeting="Hi! How can I help?")
    assert models.phrases.misses == 1

    for _room in range(2):
        room_tts = CapturingTTS(models.tts, cache=models.phrases, voice=None)
        pcm = await room_tts.render("Hi!  How can I help?")
        assert pcm.size > 0
        assert room_tts.take() is not None  # still recorded as the agent's turn
    assert (models.phrases.hits, models.phrases.misses) == (2, 1)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (None, ("voice-assistant", "streaming", None, {})),
        ("", ("voice-assistant", "streaming", None, {})),
        ('{"prompt": "tutor"}', ("tutor", "streaming", None, {})),
        ('{"prompt": "tutor", "prompt_version": 3}', ("tutor", "streaming", 3, {})),
        ('{"pipeline": "sequential"}', ("voice-assistant", "sequential", None, {})),
        ('{"pipeline": "telepathic"}', ("voice-assistant", "streaming", None, {})),  # unknown
        ("not json", ("voice-assistant", "streaming", None, {})),
        ('["a list"]', ("voice-assistant", "streaming", None, {})),
        (
            '{"variables": {"tone": "formal"}}',
            ("voice-assistant", "streaming", None, {"tone": "formal"}),
        ),
        ('{"variables": {"Bad Name": "x"}}', ("voice-assistant", "streaming", None, {})),
        ('{"variables": ["not", "a map"]}', ("voice-assistant", "streaming", None, {})),
    ],
)
def test_room_metadata_picks_prompt_pipeline_pinned_version_and_variables(
    metadata: str | None, expected: tuple[str, str, int | None, dict[str, str]]
) -> None:
    from agent.conversation import room_choices

    assert room_choices(metadata, default_prompt="voice-assistant") == expected


def test_an_idle_worker_takes_rooms_that_arrive_together() -> None:
    """Reserved (accepted, not yet started) jobs count a room slot each, not the whole worker."""
    from agent.settings import agent_settings
    from agent.worker import server

    max_jobs = agent_settings().max_jobs

    # The attributes AgentServer.run() sets before answering job requests.
    server._devmode, server._draining, server._worker_load = False, False, 0.0
    for reserved in range(max_jobs):
        server._reserved_slots = reserved
        assert server._is_available(), f"refused with {reserved} of {max_jobs} slots reserved"
    server._reserved_slots = max_jobs
    assert not server._is_available()


def test_a_turn_split_by_a_pause_reaches_the_model_as_one_message() -> None:
    chat = llm.ChatContext()
    chat.add_message(role="system", content="Be helpful.")
    chat.add_message(role="assistant", content="Hello!")
    chat.add_message(role="user", content="I am planning a trip next week.")
    chat.add_message(role="user", content="  ")  # an empty transcript is no message
    chat.add_message(role="user", content="What should I pack for rain?")
    messages = to_messages(chat)
    assert [(m.role, m.content) for m in messages] == [
        ("system", "Be helpful."),
        ("assistant", "Hello!"),
        ("user", "I am planning a trip next week. What should I pack for rain?"),
    ]


def _streamed(policy: ContentPolicy, pieces: list[str]) -> str:
    from workbench.content_filter import StreamRedactor

    redactor = StreamRedactor(policy)
    return "".join(redactor.feed(piece) for piece in pieces) + redactor.flush()


def test_a_blocked_phrase_split_between_streamed_chunks_is_still_redacted() -> None:
    """The LLM streams tokens; a phrase arriving in two (or three) chunks is caught whole."""
    policy = ContentPolicy(blocklist=["bomb", "credit card numbers"])
    assert (
        _streamed(policy, ["How to make a bo", "mb at home"]) == "How to make a [redacted] at home"
    )
    assert _streamed(policy, ["Read the credit ca", "rd num", "bers aloud."]) == (
        "Read the [redacted] aloud."
    )
    # A word that only begins like a blocked one is spoken as it is.
    assert _streamed(policy, ["A bomb", "astic speech."]) == "A bombastic speech."


def test_streamed_redaction_equals_redacting_the_whole_reply_however_it_is_cut() -> None:
    import random

    policy = ContentPolicy(blocklist=["bomb", "credit card numbers", "secret"])
    reply = "The Secret is that credit card numbers and a bomb, bombs and bombastic talk mix."
    whole, _ = policy.redact(reply)
    chance = random.Random(7)
    for _ in range(200):
        cuts = sorted(chance.sample(range(1, len(reply)), chance.randint(1, 12)))
        pieces = [reply[a:b] for a, b in zip([0, *cuts], [*cuts, len(reply)], strict=True)]
        assert _streamed(policy, pieces) == whole


def test_without_a_blocklist_every_chunk_passes_at_once() -> None:
    from workbench.content_filter import StreamRedactor

    redactor = StreamRedactor(ContentPolicy())
    assert [redactor.feed(p) for p in ["Hel", "lo"]] == ["Hel", "lo"]
    assert redactor.flush() == ""


async def test_the_agent_redacts_a_phrase_the_model_streamed_in_two_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from livekit.agents import Agent, ModelSettings

    from agent.pipelines import WorkbenchAgent

    async def model_stream(*_args: object) -> AsyncIterator[llm.ChatChunk]:
        for piece in ["Here is how to build a bo", "mb", " safely."]:
            yield llm.ChatChunk(id="r1", delta=llm.ChoiceDelta(role="assistant", content=piece))

    monkeypatch.setattr(Agent.default, "llm_node", model_stream)
    agent = WorkbenchAgent(instructions="Be helpful.", policy=ContentPolicy(blocklist=["bomb"]))
    spoken = [
        chunk.delta.content
        async for chunk in agent.llm_node(llm.ChatContext(), [], ModelSettings())
        if isinstance(chunk, llm.ChatChunk) and chunk.delta and chunk.delta.content
    ]
    assert "".join(spoken) == "Here is how to build a [redacted] safely."
