"""Prompt variables: which value fills each {{variable}}, and what a form or a room may set."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from workbench.db.models import PromptVersion
from workbench.room_options import RoomOptions, parse_variables

pytestmark = pytest.mark.unit


def _version(body: str, variables: list[str], defaults: dict[str, str]) -> PromptVersion:
    return PromptVersion(
        id=uuid.uuid4(),
        prompt_id=uuid.uuid4(),
        version=1,
        body=body,
        variables=variables,
        variable_defaults=defaults,
        notes="",
        author_id=None,
        created_at=datetime.now(UTC),
    )


def test_the_most_specific_value_fills_each_variable() -> None:
    version = _version(
        "{{tone}} {{topic}} {{user_name}}",
        ["tone", "topic", "user_name"],
        {"tone": "warm", "topic": "maths"},
    )
    assert version.values_for(user_name="Uma") == {
        "tone": "warm",
        "topic": "maths",
        "user_name": "Uma",
    }
    assert version.values_for(user_name="Uma", arm={"tone": "formal"}, room={"topic": "art"}) == {
        "tone": "formal",
        "topic": "art",
        "user_name": "Uma",
    }
    assert (
        version.values_for(user_name="Uma", arm={"tone": "formal"}, room={"tone": "curt"})["tone"]
        == "curt"
    )
    assert version.render(version.values_for(user_name="Uma")) == "warm maths Uma"


def test_a_version_from_before_defaults_fills_its_variables_with_the_name() -> None:
    legacy = _version("Hi {{who}}", ["who"], {})
    assert legacy.variables_without_default == ["who"]
    assert legacy.values_for(user_name="Uma") == {"who": "Uma"}
    with pytest.raises(KeyError, match="prompt variables without a value: who"):
        legacy.render({})


def test_form_lines_become_values_and_bad_ones_are_named() -> None:
    assert parse_variables("tone = formal\n\n topic=the = sign ") == {
        "tone": "formal",
        "topic": "the = sign",
    }
    with pytest.raises(ValueError, match="line 2: write name=value"):
        parse_variables("tone=formal\njust words")
    with pytest.raises(ValueError, match="not a variable name: 'Tone!'"):
        parse_variables("Tone!=x")
    with pytest.raises(ValueError, match="at most 500 characters"):
        parse_variables("tone=" + "x" * 501)


def test_room_metadata_round_trips_variables() -> None:
    options = RoomOptions(prompt="tutor", variables={"tone": "formal"})
    assert RoomOptions.from_metadata(options.to_metadata()).variables == {"tone": "formal"}
