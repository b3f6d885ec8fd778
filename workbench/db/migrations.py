"""Apply `supabase/migrations/<timestamp>_<name>.sql` in order, once each, checksummed."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from workbench.config import REPO_ROOT

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


def apply_migrations(conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations, each in its own transaction; return those applied now.

    Raises MigrationError if an applied migration's file changed: never edit
    an applied migration, add a new one.
    """
    applied = {
        version: checksum
        for version, checksum in conn.execute(
            "select version, checksum_sha256 from supabase_migrations.schema_migrations"
        ).fetchall()
    }
    newly_applied = []
    for migration in discover(directory):
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise MigrationError(
                    f"{migration.path.name} changed after it was applied; revert the edit and "
                    "put the change in a new migration"
                )
            continue
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
