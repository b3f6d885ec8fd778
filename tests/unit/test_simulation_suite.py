"""Suites are refused before any room opens, each problem named with its file, line, scenario and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.simulation.suite import SuiteError, load_suite
from workbench.config import REPO_ROOT

pytestmark = pytest.mark.unit

GOOD = """\
name: tiny
scenarios:
  - id: hello
    turns:
      - say: Hello there.
"""


def _suite(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "suites").glob("*.yaml")))
def test_every_shipped_suite_loads(path: Path) -> None:
    suite = load_suite(path)
    assert suite.scenarios


def test_a_small_suite_gets_the_defaults(tmp_path: Path) -> None:
    suite = load_suite(_suite(tmp_path, GOOD))
    (scenario,) = suite.scenarios
    assert scenario.caller.rate == 1.0
    assert scenario.expect.no_repeated_reply
    assert scenario.max_turns == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # an unknown field, on the line it is written
            GOOD + "    expect: {no_repeated_reply: true, answer_within_s: 3}\n",
            ["suite.yaml:6: scenario 'hello': expect.answer_within_s", "Extra inputs"],
        ),
        (  # a value out of range
            GOOD.replace("    turns:", "    caller: {rate: 9}\n    turns:"),
            ["suite.yaml:4: scenario 'hello': caller.rate", "less than or equal to 2"],
        ),
        (  # a voice its TTS spec does not speak
            GOOD.replace("    turns:", "    caller: {voice: nobody}\n    turns:"),
            ["scenario 'hello': caller.voice", "does not speak 'nobody'"],
        ),
        (  # a TTS spec that cannot be read
            GOOD.replace(
                "    turns:", "    caller: {voice_spec: configs/models/none.yaml}\n    turns:"
            ),
            ["scenario 'hello': caller.voice_spec", "unreadable tts spec"],
        ),
        (  # a spec of the wrong kind
            GOOD.replace(
                "    turns:",
                "    caller: {voice_spec: configs/models/minilm-l6-v2.yaml}\n    turns:",
            ),
            ["caller.voice_spec", "is a embed spec, not tts"],
        ),
        (  # a threshold no call can meet
            GOOD + "      - say: And again.\n    expect: {ends_within_turns: 1}\n",
            ["expect.ends_within_turns", "can never hold the 2 scripted turns"],
        ),
        (  # a barge-in with nothing to barge in with
            GOOD.replace("    turns:", "    caller: {barge_in: {after_turn: 1}}\n    turns:"),
            ["caller.barge_in.after_turn", "no caller turn after it"],
        ),
        (  # rubric items and no judge
            GOOD + "    expect: {rubric: [The agent is polite.]}\n",
            ["expect.rubric", "judge_spec"],
        ),
        (  # scripted and LLM-driven at once
            GOOD
            + "    caller_llm: {spec: configs/models/smollm2-135m-instruct.yaml, opening: Hi}\n",
            ["scenario 'hello'", "either `turns`"],
        ),
        (  # two scenarios with one id
            GOOD + "  - id: hello\n    turns: [{say: Hi}]\n",
            ["scenario ids must be unique; repeated: hello"],
        ),
        (  # an empty part around a pause mark
            GOOD.replace("Hello there.", "Hello there. |"),
            ["turns.0.say", "an empty part"],
        ),
    ],
)
def test_bad_suites_are_refused_with_where_and_why(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    with pytest.raises(SuiteError) as refused:
        load_suite(_suite(tmp_path, text))
    for piece in expected:
        assert piece in str(refused.value)


def test_not_yaml_and_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="not valid YAML"):
        load_suite(_suite(tmp_path, "name: [unclosed\n"))
    with pytest.raises(SuiteError, match="cannot read"):
        load_suite(tmp_path / "absent.yaml")
