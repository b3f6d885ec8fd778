"""A person's workbench data, made and fingerprinted: the proof that tests keep off it.

`.ci/run` brings the person's stack up (`./dev up`), makes some of a person's data
(an account, a conversation with turns and their latency rollups, a prompt version,
a stored object), takes a fingerprint, runs the whole `./dev test` while that stack
keeps serving, and compares: every table's rows, the accounts, the storage objects,
the mail and the data folder must be exactly as they were.

    python -m tests.support.person_data make
    python -m tests.support.person_data fingerprint FILE
    python -m tests.support.person_data compare FILE
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from stack.instances import is_test_instance
from tests.support.images import PNG_1PX
from tests.support.personas import create_user
from workbench.config import Settings, get_settings
from workbench.db.connection import (
    admin_database_url,
    database_url,
    fresh_connections,
    service_session,
)
from workbench.db.models import TurnDraft
from workbench.db.repositories.conversations import ConversationsRepo
from workbench.db.repositories.prompts import PromptsRepo
from workbench.storage import open_store

# Rows a running stack rewrites by itself while no one uses it: worker heartbeats and
# the room claims they renew. Everything else a person's data holds must not move.
LIVENESS_TABLES = frozenset({"public.agent_workers"})
SCHEMAS = ("public", "auth", "private", "storage")


def _tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    rows = conn.execute(
        """select table_schema, table_name from information_schema.tables
            where table_type = 'BASE TABLE' and table_schema = any(%s)
            order by 1, 2""",
        [list(SCHEMAS)],
    ).fetchall()
    return [(schema, name) for schema, name in rows if f"{schema}.{name}" not in LIVENESS_TABLES]


def _files(folder: Path) -> dict[str, str]:
    """Each file under `folder` by its path there, with its size and content digest."""
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        found[str(path.relative_to(folder))] = f"{path.stat().st_size} {digest}"
    return found


def fingerprint(settings: Settings) -> dict[str, Any]:
    """Row count and content digest of every table; every stored, mailed and data file."""
    tables = {}
    with psycopg.connect(admin_database_url(settings), autocommit=True) as conn:
        for schema, name in _tables(conn):
            table = sql.Identifier(schema, name)
            count, digest = conn.execute(
                sql.SQL(
                    "select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), ''))"
                    " from {} t"
                ).format(table)
            ).fetchone()  # type: ignore[misc]
            tables[f"{schema}.{name}"] = f"{count} rows {digest}"
    assert settings.storage_url is not None
    return {
        "tables": tables,
        "storage": _files(Path(settings.storage_url)),
        "mail": _files(settings.local_dir / "mail"),
        "data": _files(settings.data_dir),
    }


async def _make_async(settings: Settings) -> None:
    assert settings.supabase_jwt_secret is not None
    with psycopg.connect(admin_database_url(settings), autocommit=True) as admin:
        person = create_user(
            admin,
            name="person",
            role="researcher",
            jwt_secret=settings.supabase_jwt_secret.get_secret_value(),
        )
    assert person.id is not None
    now = datetime.now(UTC)
    connect = fresh_connections(database_url(settings), name="person-data")
    async with connect() as conn, service_session(conn, acting_for=person.id) as tx:
        prompts = PromptsRepo(tx)
        prompt = await prompts.create(slug=f"person-{person.id.hex[:8]}", title="Mine")
        await prompts.add_version(prompt.id, "You answer as my study needs.", notes="mine")
        talk = await ConversationsRepo(tx).start(owner_id=person.id, model_specs={})
        await ConversationsRepo(tx).add_turns(
            [
                TurnDraft(
                    conversation_id=talk.id,
                    idx=i,
                    role=role,
                    text=text,
                    started_at=now + timedelta(seconds=2 * i),
                    ended_at=now + timedelta(seconds=2 * i + 1),
                    v2v_s=0.6 if role == "agent" else None,
                )
                for i, (role, text) in enumerate(
                    [("agent", "Hello."), ("user", "Hi there."), ("agent", "How can I help?")]
                )
            ]
        )
        await open_store(settings).put(
            tx,
            bucket="avatars",
            owner_id=person.id,
            name="avatar.png",
            data=PNG_1PX,
            content_type="image/png",
        )


def main(argv: list[str] | None = None) -> int:
    """`make`, `fingerprint FILE` or `compare FILE`, on the stack the environment names."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("make", "fingerprint", "compare"))
    parser.add_argument("file", nargs="?", type=Path)
    args = parser.parse_args(argv)
    settings = get_settings()
    if is_test_instance(settings):
        sys.exit("this is the tests' instance: run it on the person's (`./dev python -m ...`)")
    if args.command == "make":
        asyncio.run(_make_async(settings))
        return 0
    if args.file is None:
        parser.error(f"{args.command} needs a FILE")
    if args.command == "fingerprint":
        args.file.write_text(json.dumps(fingerprint(settings), indent=1, sort_keys=True))
        return 0
    before = json.loads(args.file.read_text())
    after = fingerprint(settings)
    changed = [
        f"{part} {key}: {before[part].get(key, 'absent')} -> {after[part].get(key, 'absent')}"
        for part in before
        for key in sorted(set(before[part]) | set(after[part]))
        if before[part].get(key) != after[part].get(key)
    ]
    if changed:
        print("the person's data changed while the tests ran:\n  " + "\n  ".join(changed))
        return 1
    tables = len(after["tables"])
    files = sum(len(after[part]) for part in ("storage", "mail", "data"))
    print(f"the person's data is as it was: {tables} tables, {files} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
