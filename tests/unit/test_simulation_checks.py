"""Each deterministic check of a simulated call, a run's verdict, and the call's recorded audio, on calls built by hand."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import numpy as np
import pytest

from evals.simulation.call import CALL_AUDIO_HZ, CallerModels, CallSetup, call_audio
from evals.simulation.checks import (
    CallRecord,
    CallTurn,
    Similarities,
    answers_within,
    check_call,
    no_echo,
    no_repeated_reply,
    no_talk_over_pauses,
    shared_run,
)
from evals.simulation.suite import Expect, Scenario, ScriptedTurn, Suite, TurnExpect
from evals.simulation.task import SimulationTask, run_failed, summarise_calls
from workbench.config import REPO_ROOT, get_settings
from workbench.db.models import EvalSample
from workbench.models.base import ChatModel, TextEmbedder
from workbench.models.registry import load_model
from workbench.models.spec import load_spec
from workbench.voice_client import FRAME_MS, RATE_HZ, VoiceClient

pytestmark = pytest.mark.unit


def _turn(said: str, reply: str, *, at: float = 0.0, v2v: float | None = 1.0) -> CallTurn:
    return CallTurn(
        said=said,
        started_s=at,
        words_end_s=at + 2.0,
        reply_at_s=None if v2v is None else at + 2.0 + v2v,
        reply_text=reply,
    )


def _call(*replies: str) -> CallRecord:
    return CallRecord(
        scenario="s", turns=[_turn(f"question {i}", r, at=10.0 * i) for i, r in enumerate(replies)]
    )


def _unrelated(n: int) -> np.ndarray:
    return np.eye(n) * 1.0 + (1 - np.eye(n)) * 0.1


def test_an_exact_repeat_fails_whatever_the_embedder_says() -> None:
    call = _call(
        "I'm sorry for any misunderstanding.", "Paris.", "I'm sorry for any misunderstanding!"
    )
    result = no_repeated_reply(call, _unrelated(3), threshold=0.92)
    assert not result.passed
    assert "reply 3 repeats reply 1" in result.detail


def test_a_near_duplicate_by_meaning_fails_and_distinct_replies_pass() -> None:
    call = _call("It is sunny today.", "Today it is sunny.")
    similar = np.array([[1.0, 0.95], [0.95, 1.0]])
    assert not no_repeated_reply(call, similar, threshold=0.92).passed
    assert no_repeated_reply(call, _unrelated(2), threshold=0.92).passed


def test_a_late_reply_fails_the_latency_check() -> None:
    call = CallRecord(
        scenario="s", turns=[_turn("a", "b", v2v=1.2), _turn("c", "d", at=9, v2v=3.4)]
    )
    result = answers_within(call, 3.0)
    assert not result.passed
    assert "turn 2: 3.40 s" in result.detail
    assert answers_within(call, 3.5).passed


def test_talking_into_a_callers_pause_fails() -> None:
    call = _call("Sure.")
    call.turns[0].pauses = [(0.5, 1.5)]
    assert no_talk_over_pauses(call).passed
    call.turns[0].agent_over_pauses_s = 0.1  # a click, not speech
    assert no_talk_over_pauses(call).passed
    call.turns[0].agent_over_pauses_s = 0.8
    assert not no_talk_over_pauses(call).passed


def _scenario(*turns: ScriptedTurn, **expect: object) -> Scenario:
    return Scenario(id="s", turns=list(turns), expect=Expect(**expect))  # type: ignore[arg-type]


def test_mentions_are_matched_after_normalisation() -> None:
    scenario = _scenario(
        ScriptedTurn(say="Capital of France?", expect=TurnExpect(mentions=["Paris"])),
        ScriptedTurn(say="Two plus two?", expect=TurnExpect(mentions_any=["four", "4"])),
        no_repeated_reply=False,
        not_mentions=["appointment"],
    )
    good = _call("PARIS, of course.", "It is 4.")
    results = check_call(good, scenario, Similarities(_unrelated(2), np.ones(2)))
    assert all(r.passed for r in results), results
    # The normaliser writes "142 million" as "142000000": the mention still counts.
    millions = _scenario(
        ScriptedTurn(say="How many live in Japan?", expect=TurnExpect(mentions_any=["million"])),
        no_repeated_reply=False,
    )
    counted = _call("The population of Japan is around 142 million.")
    assert all(
        r.passed for r in check_call(counted, millions, Similarities(_unrelated(1), np.ones(1)))
    )
    bad = _call("Lyon.", "Your appointment is at five.")
    failed = {
        r.name
        for r in check_call(bad, scenario, Similarities(_unrelated(2), np.ones(2)))
        if not r.passed
    }
    assert failed == {"turn 1 mentions", "turn 2 mentions one of", "call does not mention"}


def test_an_unanswered_turn_fails_unless_the_caller_cut_it_short() -> None:
    scenario = _scenario(ScriptedTurn(say="a"), ScriptedTurn(say="b"), no_repeated_reply=False)
    call = CallRecord(scenario="s", turns=[_turn("a", "", v2v=None), _turn("b", "yes", at=9)])
    sims = Similarities(_unrelated(2), np.ones(2))
    answered = next(r for r in check_call(call, scenario, sims) if r.name == "every_turn_answered")
    assert not answered.passed
    call.turns[1].barged_in = True  # the caller spoke over the first reply on purpose
    answered = next(r for r in check_call(call, scenario, sims) if r.name == "every_turn_answered")
    assert answered.passed


def test_a_call_that_runs_to_its_turn_limit_fails_ends_within() -> None:
    scenario = _scenario(ScriptedTurn(say="a"), no_repeated_reply=False, ends_within_turns=1)
    call = _call("fine")
    sims = Similarities(_unrelated(1), np.ones(1))
    assert all(r.passed for r in check_call(call, scenario, sims))
    call.ended_by = "turn limit"
    assert not all(r.passed for r in check_call(call, scenario, sims))


def _row(sample_id: str, passed: bool | None) -> EvalSample:
    if passed is None:
        return EvalSample(sample_id=sample_id, error="CallFailed: no agent joined")
    return EvalSample(
        sample_id=sample_id,
        reference="a",
        metrics={"passed": float(passed), "checks": [], "heard_v2v_s": [1.0], "live_wer": 0.1},
    )


def test_a_failed_or_errored_required_scenario_fails_the_run() -> None:
    suite = Suite(
        name="t",
        scenarios=[
            Scenario(id="must", required=True, turns=[ScriptedTurn(say="a")]),
            Scenario(id="may", turns=[ScriptedTurn(say="b")]),
        ],
    )
    fine = summarise_calls([_row("must#0", True), _row("may#0", False)], suite)
    assert fine["pass_rate"] == 0.5
    assert run_failed(fine) == []
    broken = summarise_calls([_row("must#0", None), _row("may#0", True)], suite)
    assert broken["errored"] == ["must#0"]
    assert run_failed(broken) == ["required scenario must#0 did not pass"]
    strict = Suite(**{**suite.model_dump(), "min_pass_rate": 0.9})
    assert (
        "below the suite's 0.9"
        in run_failed(summarise_calls([_row("must#0", True), _row("may#0", False)], strict))[0]
    )


def test_a_reply_that_says_the_callers_words_back_fails() -> None:
    call = CallRecord(scenario="s", turns=[_turn("Hello there, how are you today?", "")])
    call.turns[0].reply_text = "Hello there! How are you today?"
    assert not no_echo(call).passed
    call.turns[0].reply_text = "Hello! I'm well, thank you. How can I help?"
    assert no_echo(call).passed


async def test_the_call_audio_puts_each_side_where_it_happened() -> None:
    voice = VoiceClient("ws://127.0.0.1:1", "unused", keep_audio=True)
    t0 = 100.0
    voice.sent.append((t0 + 1.0, np.full(RATE_HZ // 2, 8000, np.int16)))  # 0.5 s of caller
    frame = np.full(RATE_HZ * FRAME_MS // 1000, -8000, np.int16)
    for k in range(25):  # 0.5 s of agent, arriving from 2.02 s on
        voice.heard.agent_audio.append((t0 + 2.0 + (k + 1) * FRAME_MS / 1000, 8000))
        voice.heard.agent_frames.append(frame)
    audio = call_audio(voice, t0)
    hz = CALL_AUDIO_HZ

    def loud(channel: int, start: float, end: float) -> bool:
        return bool(np.abs(audio[int(start * hz) : int(end * hz), channel]).mean() > 0.2)

    assert loud(0, 1.05, 1.45)
    assert not loud(0, 1.6, 2.6)
    assert loud(1, 2.05, 2.45)
    assert not loud(1, 0.5, 1.9)
    assert audio.shape[0] == pytest.approx(2.5 * hz, abs=hz * 0.05)


def test_a_reply_parroting_a_long_run_of_an_earlier_one_is_a_repeat() -> None:
    """Longer replies around the same parroted clause are not near-duplicates by meaning."""
    call = _call(
        "A table for 4.8 is a classic example of an unconventional booking.",
        "A table for 4.8 is a classic example of an unconventional book ink where the idea "
        "that you can order tables at any time and not worry about your reservation.",
    )
    result = no_repeated_reply(call, _unrelated(2), threshold=0.92)
    assert not result.passed
    assert "words in a row" in result.detail
    # A restated fact is not a repeat.
    fact = _call(
        "The capital of Japan is Tokyo.",
        "The capital of Japan is Tokyo, home to about fourteen million people.",
    )
    assert no_repeated_reply(fact, _unrelated(2), threshold=0.92).passed
    assert shared_run("a b c d", "x b c d y") == 3


async def test_a_call_is_judged_with_its_rubric_and_embeddings() -> None:
    """The judge's yes-probability per rubric item joins the deterministic checks; replies
    are compared by the packaged sentence embedder."""
    embed = load_model(load_spec(REPO_ROOT / "configs/models/minilm-l6-v2.yaml"))
    judge = load_model(load_spec(REPO_ROOT / "configs/models/smollm2-135m-instruct-llamacpp.yaml"))
    assert isinstance(embed, TextEmbedder)
    assert isinstance(judge, ChatModel)
    scenario = Scenario(
        id="capital",
        turns=[ScriptedTurn(say="What is the capital of France?")],
        expect=Expect(rubric=["The agent answers the question."]),
    )
    suite = Suite(name="t", judge_spec=Path("configs/models/x.yaml"), scenarios=[scenario])
    task = SimulationTask(suite=suite, setup=CallSetup(get_settings()), accounts=[uuid4()])
    task.models = CallerModels(listen=None, embed=embed, judge=judge)  # type: ignore[arg-type]
    call = _call("Paris is the capital of France.")
    call.turns[0].said = "What is the capital of France?"
    results, metrics = await task._judge(scenario, call)
    (rubric,) = [r for r in results if r.name.startswith("rubric")]
    assert 0.0 <= metrics["rubric_p_yes"][0] <= 1.0
    assert rubric.detail.startswith("judge p(yes) = ")
    assert metrics["relevance"] > 0.5  # the reply is about what was asked
    assert metrics["passed"] == float(all(r.passed for r in results))
