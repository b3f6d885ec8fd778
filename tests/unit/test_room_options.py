"""Room metadata: what the web app writes is what the agent and a re-dispatch read."""

from __future__ import annotations

import pytest

from workbench.room_options import RoomOptions

pytestmark = pytest.mark.unit


def test_options_round_trip_and_unset_ones_are_left_out() -> None:
    options = RoomOptions(
        prompt="voice-assistant", pipeline="sequential", stack="cpu-hf", prompt_version=4
    )
    assert RoomOptions.from_metadata(options.to_metadata()) == options
    assert RoomOptions(stack="cpu-hf").to_metadata() == '{"stack": "cpu-hf"}'


@pytest.mark.parametrize("metadata", [None, "", "not json", "[1, 2]", '"a string"', "{}"])
def test_unreadable_or_foreign_metadata_asks_for_nothing(metadata: str | None) -> None:
    assert RoomOptions.from_metadata(metadata) == RoomOptions()


@pytest.mark.parametrize("version", ['"4"', "0", "-1", "1.5", "true", "null"])
def test_only_a_positive_whole_version_is_pinned(version: str) -> None:
    metadata = '{"prompt": "p", "prompt_version": ' + version + "}"
    assert RoomOptions.from_metadata(metadata) == RoomOptions(prompt="p")
