"""Generated local secrets: complete, private, safe to pass anywhere, never replaced."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stack.errors import StackError
from stack.secrets import ensure_local_secrets

pytestmark = pytest.mark.unit


def test_generated_once_private_and_plain(tmp_path: Path) -> None:
    first = ensure_local_secrets(tmp_path)
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0
    # A secret starting with "-" once broke the agent's command line: plain hex only.
    for name in ("postgres_password", "livekit_api_secret", "jwt_secret"):
        assert re.fullmatch(r"[0-9a-f]{32,}", first[name]), name
    assert ensure_local_secrets(tmp_path) == first  # nothing regenerated


def test_existing_values_are_kept_and_gaps_filled(tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text(json.dumps({"postgres_password": "-mine"}))
    secrets = ensure_local_secrets(tmp_path)
    assert secrets["postgres_password"] == "-mine"
    assert secrets["anon_key"].count(".") == 2


def test_corrupt_file_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text("{oops")
    with pytest.raises(StackError, match="not valid JSON"):
        ensure_local_secrets(tmp_path)
    assert (tmp_path / "secrets.json").read_text() == "{oops"
