"""Migrating a hosted project's database: a plan first, every migration once, never the local seed."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from workbench.db.migrations import MIGRATIONS_DIR, MigrationError, apply_migrations, main, plan

pytestmark = pytest.mark.integration


def _one(dsn: str, query: str) -> object:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_a_dry_run_changes_nothing_then_the_migration_applies_each_once(
    scratch_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A hosted project whose ledger the Supabase CLI made: no checksum column.
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("drop table supabase_migrations.schema_migrations")
        conn.execute(
            "create table supabase_migrations.schema_migrations"
            " (version text primary key, statements text[], name text)"
        )
        conn.execute(
            "insert into supabase_migrations.schema_migrations (version, name)"
            " values ('19990101000000', 'made_by_the_cli')"
        )
    files = sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))

    assert main(["--database-url", scratch_db, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert all(f"would apply   {name}" in printed for name in files)
    assert "the local seed (supabase/seed.sql) is never applied" in printed
    assert _one(scratch_db, "select to_regclass('public.conversations') is null") is True
    assert _one(scratch_db, "select count(*) from supabase_migrations.schema_migrations") == 1

    assert main(["--database-url", scratch_db]) == 0
    assert f"applied {len(files)} migration(s)" in capsys.readouterr().out
    assert _one(scratch_db, "select to_regclass('public.conversations') is not null") is True
    assert _one(
        scratch_db,
        "select count(*) from supabase_migrations.schema_migrations"
        " where checksum_sha256 is not null",
    ) == len(files)
    assert _one(scratch_db, "select count(*) from public.system_prompts") == 0  # no seed

    assert main(["--database-url", scratch_db]) == 0
    assert "up to date" in capsys.readouterr().out


def test_an_edited_applied_migration_stops_everything(scratch_db: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        apply_migrations(conn, folder)
        first = sorted(folder.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited after it was applied\n")
        assert [m.path.name for m in plan(conn, folder).changed] == [first.name]
        with pytest.raises(MigrationError, match="changed after it was applied"):
            apply_migrations(conn, folder)


def test_no_database_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", "postgresql://nobody@127.0.0.1:1/none", "--dry-run"]) == 1
    assert "error:" in capsys.readouterr().err
