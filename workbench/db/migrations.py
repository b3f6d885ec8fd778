"""Apply `supabase/migrations/<timestamp>_<name>.sql` in order, once each, checksummed.

The embedded stack applies them at `./dev up`; a hosted project's database gets
them through `python -m workbench.db.migrations [--dry-run]` (its owner's URL,
`DATABASE_ADMIN_URL`), which prints the plan first and never applies the local
seed (`supabase/seed.sql`: demo prompts for the embedded stack's accounts).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

from workbench.config import REPO_ROOT, get_settings

MIGRATIONS_DIR = REPO_ROOT / "supabase" / "migrations"
BOOTSTRAP_SQL = REPO_ROOT / "supabase" / "bootstrap" / "roles.sql"
SEED_SQL = REPO_ROOT / "supabase" / "seed.sql"
_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """A migration is misnamed, was edited after being applied, or failed (and was rolled back)."""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        """The file's SQL text."""
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        """sha256 of the file, to catch edits after it was applied."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in `directory`, oldest first; a misnamed `.sql` file is an error."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name}: migration files are named <14-digit UTC timestamp>_<snake_name>.sql"
            )
        found.append(Migration(match["version"], match["name"], path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations in {directory} share a timestamp")
    return found


def apply_bootstrap(conn: psycopg.Connection) -> None:
    """Apply Supabase's role model (idempotent) in one transaction."""
    with conn.transaction():
        conn.execute(BOOTSTRAP_SQL.read_text().encode())


def apply_seed(conn: psycopg.Connection) -> None:
    """Apply the local-only seed (idempotent) in one transaction. Never on a hosted project."""
    with conn.transaction():
        conn.execute(SEED_SQL.read_text().encode())


@dataclass(frozen=True)
class Plan:
    """What applying the migrations to a database would do."""

    applied: list[Migration]
    pending: list[Migration]
    changed: list[Migration]  # applied, but the file differs now: an error

    def describe(self) -> str:
        """The plan as lines for a person."""
        lines = [f"{len(self.applied)} migration(s) already applied"]
        lines += [f"  would apply   {m.path.name}" for m in self.pending] or ["  up to date"]
        lines += [f"  CHANGED after it was applied: {m.path.name}" for m in self.changed]
        lines.append("the local seed (supabase/seed.sql) is never applied here")
        return "\n".join(lines)


def plan(conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> Plan:
    """Compare the files with the database's ledger; reads only.

    A ledger row without a checksum (written by the Supabase CLI, whose table has
    none) counts as applied and is not checked.
    """
    ledger = conn.execute(
        "select to_regclass('supabase_migrations.schema_migrations') is not null"
    ).fetchone()
    applied: dict[str, str | None] = {}
    if ledger and ledger[0]:
        has_checksum = conn.execute(
            """select exists (select 1 from information_schema.columns
                              where table_schema = 'supabase_migrations'
                                and table_name = 'schema_migrations'
                                and column_name = 'checksum_sha256')"""
        ).fetchone()
        column = "checksum_sha256" if has_checksum and has_checksum[0] else "null::text"
        applied = dict(
            conn.execute(
                f"select version, {column} from supabase_migrations.schema_migrations"  # noqa: S608 - fixed names
            ).fetchall()
        )
    done: list[Migration] = []
    pending: list[Migration] = []
    changed: list[Migration] = []
    for migration in discover(directory):
        if migration.version not in applied:
            pending.append(migration)
            continue
        recorded = applied[migration.version]
        (changed if recorded is not None and recorded != migration.checksum else done).append(
            migration
        )
    return Plan(applied=done, pending=pending, changed=changed)


def prepare_ledger(conn: psycopg.Connection) -> None:
    """The ledger table, created or (a Supabase CLI one) given the columns this runner writes."""
    with conn.transaction():
        conn.execute("create schema if not exists supabase_migrations")
        conn.execute(
            """create table if not exists supabase_migrations.schema_migrations (
                 version text primary key, name text, checksum_sha256 text,
                 applied_at timestamptz not null default now())"""
        )
        conn.execute(
            """alter table supabase_migrations.schema_migrations
                 add column if not exists name text,
                 add column if not exists checksum_sha256 text,
                 add column if not exists applied_at timestamptz default now()"""
        )


def apply_migrations(conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations, each in its own transaction; return those applied now.

    Raises MigrationError if an applied migration's file changed: never edit
    an applied migration, add a new one.
    """
    todo = plan(conn, directory)
    if todo.changed:
        raise MigrationError(
            f"{todo.changed[0].path.name} changed after it was applied; revert the edit and "
            "put the change in a new migration"
        )
    newly_applied = []
    for migration in todo.pending:
        try:
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(
                    "insert into supabase_migrations.schema_migrations (version, name, checksum_sha256)"
                    " values (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
        except psycopg.Error as exc:
            raise MigrationError(
                f"{migration.path.name} failed and was rolled back: {exc}"
            ) from None
        newly_applied.append(migration)
    return newly_applied


def main(argv: list[str] | None = None) -> int:
    """`python -m workbench.db.migrations [--dry-run] [--database-url URL]`: migrate a hosted database."""
    parser = argparse.ArgumentParser(
        prog="python -m workbench.db.migrations",
        description="Apply supabase/migrations/ to a database (default: DATABASE_ADMIN_URL).",
    )
    parser.add_argument("--database-url", help="the database owner's URL")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    args = parser.parse_args(argv)
    from workbench.db.connection import admin_database_url

    try:
        url = args.database_url or admin_database_url(get_settings())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            todo = plan(conn)
            print(todo.describe())
            if todo.changed:
                print("error: an applied migration was edited; nothing applied", file=sys.stderr)
                return 1
            if args.dry_run or not todo.pending:
                return 0
            prepare_ledger(conn)
            applied = apply_migrations(conn)
    except (psycopg.Error, MigrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"applied {len(applied)} migration(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
