"""Migration files: naming and ordering rules, checked without a database."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.db.migrations import MIGRATIONS_DIR, MigrationError, discover

pytestmark = pytest.mark.unit


def test_migrations_are_ordered_by_timestamp(tmp_path: Path) -> None:
    (tmp_path / "20260102000000_second.sql").write_text("select 2;")
    (tmp_path / "20260101000000_first.sql").write_text("select 1;")
    assert [m.name for m in discover(tmp_path)] == ["first", "second"]


@pytest.mark.parametrize(
    "name", ["init.sql", "2026_init.sql", "20260101000000-init.sql", "20260101000000_Init.sql"]
)
def test_misnamed_migration_is_an_error(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("select 1;")
    with pytest.raises(MigrationError, match=r"<14-digit UTC timestamp>_<snake_name>\.sql"):
        discover(tmp_path)


def test_duplicate_timestamps_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "20260101000000_a.sql").write_text("select 1;")
    (tmp_path / "20260101000000_b.sql").write_text("select 1;")
    with pytest.raises(MigrationError, match="share a timestamp"):
        discover(tmp_path)


def test_repository_migrations_are_well_named() -> None:
    discover(MIGRATIONS_DIR)
