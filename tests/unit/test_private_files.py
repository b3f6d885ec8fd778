"""Owner-only files (secrets, passwords, keys): 0600 from the first byte, never through a link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from stack.private_files import write_private

pytestmark = pytest.mark.unit


def test_a_private_file_is_the_owners_only_and_replaces_a_looser_one(tmp_path: Path) -> None:
    target = tmp_path / "secrets.json"
    target.write_text("old")
    target.chmod(0o644)  # left readable by someone before
    write_private(target, '{"key": "value"}')
    assert target.read_text() == '{"key": "value"}'
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"]  # no temporary left


def test_a_link_planted_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("theirs")
    target = tmp_path / "ca.key"
    os.symlink(elsewhere, target)
    write_private(target, b"secret key")
    assert not target.is_symlink()
    assert target.read_bytes() == b"secret key"
    assert elsewhere.read_text() == "theirs"  # the link's target was not written through
