"""Throw-away databases in the stack's cluster, for tests and benchmarks."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from workbench.db.migrations import apply_bootstrap, apply_migrations


def in_database(role_dsn: str, database_dsn: str) -> str:
    """`role_dsn` (e.g. the app's `authenticator` URL) pointed at `database_dsn`'s database."""
    return role_dsn.rsplit("/", 1)[0] + "/" + database_dsn.rsplit("/", 1)[1]


@contextmanager
def scratch_database(
    admin_dsn: str, *, with_migrations: bool, prefix: str = "vwb_test"
) -> Iterator[str]:
    """A fresh database with Supabase's role model (and the app migrations); dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            apply_bootstrap(conn)
            if with_migrations:
                apply_migrations(conn)
        yield dsn
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))
