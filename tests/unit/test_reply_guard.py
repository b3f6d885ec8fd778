"""The reply guard: a streamed reply that copies the caller's turn or an earlier reply is generated again."""

from __future__ import annotations

import pytest
from livekit.agents import llm

from agent.llm_adapter import WorkbenchLLM
from workbench.models import ModelSpec, create
from workbench.models.base import ChatModel, GenerationParams
from workbench.reply_guard import COPIED_RUN_WORDS, ReplyGuard, Verdict, retry_params

pytestmark = pytest.mark.unit


def _verdicts(guard: ReplyGuard, pieces: list[str]) -> list[Verdict]:
    return [guard.feed(piece) for piece in pieces]


def test_the_callers_turn_said_back_is_a_copy() -> None:
    guard = ReplyGuard("Hello there, how are you today?", ["Hello! How can I help you today?"])
    verdicts = _verdicts(guard, ["Hello", " there", ",", " how", " are", " you", " today", "?"])
    assert Verdict.RETRY in verdicts
    assert set(verdicts[: verdicts.index(Verdict.RETRY)]) == {Verdict.HOLD}  # nothing spoken


def test_a_different_opening_is_released_at_once_and_stays_released() -> None:
    guard = ReplyGuard("What is the capital of France?", ["The capital of Japan is Tokyo."])
    assert _verdicts(guard, ["Paris", " is", " the", " capital", " of", " Japan"]) == [
        Verdict.HOLD,  # "Paris" may not be a whole word yet
        *[Verdict.RELEASE] * 5,
    ]


def test_a_shared_opening_is_held_until_it_leaves_the_earlier_reply() -> None:
    guard = ReplyGuard("And Italy?", ["The capital of Japan is Tokyo."])
    verdicts = _verdicts(guard, ["The", " capital", " of", " Italy", " is", " Rome."])
    assert verdicts == [
        Verdict.HOLD,
        Verdict.HOLD,
        Verdict.HOLD,
        Verdict.HOLD,
        Verdict.RELEASE,
        Verdict.RELEASE,
    ]


def test_words_split_between_pieces_are_judged_whole() -> None:
    guard = ReplyGuard("Where?", ["The capital of Japan is Tokyo."])
    pieces = ["The", " cap", "ital", " of", " Japan", " is", " Tok", "yo", "."]
    assert _verdicts(guard, pieces)[-1] is Verdict.RETRY


def test_a_long_copied_opening_is_a_copy_before_it_ends() -> None:
    earlier = "I would love to help you order two large pizzas with extra cheese today."
    guard = ReplyGuard("Please deliver them.", [earlier])
    verdicts = _verdicts(guard, [" " + w for w in earlier.split()])
    assert (
        verdicts.index(Verdict.RETRY) == COPIED_RUN_WORDS
    )  # one piece later: the 8th word is whole


def test_a_short_reply_that_ends_while_held_is_judged_whole() -> None:
    copy = ReplyGuard("Goodbye!", [])
    assert _verdicts(copy, ["Good", "bye"]) == [Verdict.HOLD, Verdict.HOLD]
    assert copy.finish() is Verdict.RETRY
    short = ReplyGuard("Goodbye for now, see you tomorrow!", [])
    assert _verdicts(short, ["Goodbye"]) == [Verdict.HOLD]
    assert short.finish() is Verdict.RELEASE  # one word of a longer turn is an answer


def test_retries_sample_warmer_within_the_cap() -> None:
    params = GenerationParams(temperature=0.3, seed=7)
    assert retry_params(params, 0) is params
    assert retry_params(params, 1).temperature == pytest.approx(0.65)
    assert retry_params(params, 1).seed == 8
    assert retry_params(params, 4).temperature == 1.0
    hot = GenerationParams(temperature=1.5)
    assert retry_params(hot, 2).temperature == 1.5  # never cooler than the spec


def _scripted(reply: str) -> ChatModel:
    model = create(
        ModelSpec(
            name="scripted",
            kind="llm",
            backend="fake",
            model="fake",
            params={"reply": reply, "ms_per_token": 0},
        )
    )
    model.load()
    assert isinstance(model, ChatModel)
    return model


async def _answer(adapter: WorkbenchLLM, said: str) -> list[str]:
    ctx = llm.ChatContext.empty()
    ctx.add_message(role="system", content="You are a helpful assistant.")
    ctx.add_message(role="assistant", content="Hello! How can I help you today?")
    ctx.add_message(role="user", content=said)
    pieces = []
    async with adapter.chat(chat_ctx=ctx) as stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                pieces.append(chunk.delta.content)
    return pieces


async def test_the_agents_llm_tries_again_and_says_the_last_attempt_once() -> None:
    """A model that can only parrot: every attempt is dropped but the last, spoken once, whole."""
    parrot = _scripted("Hello there, how are you today?")
    pieces = await _answer(
        WorkbenchLLM(parrot, guard_attempts=3), "Hello there, how are you today?"
    )
    assert "".join(pieces) == "Hello there, how are you today?"


async def test_the_agents_llm_streams_an_answer_in_one_attempt() -> None:
    answer = _scripted("Paris is the capital of France.")
    pieces = await _answer(WorkbenchLLM(answer, guard_attempts=3), "What is the capital of France?")
    assert "".join(pieces) == "Paris is the capital of France."
    assert len(pieces) == 6  # streamed word by word, not held back to the end
