"""Exports under RLS: the owner's turns to the store, readable by the owner only, status set by the service."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pandas as pd
import psycopg
import pytest

from tests.support.personas import Persona, create_user, recorded_as, session_as
from workbench import exports
from workbench.db.errors import LimitReached, NotFound, PermissionDenied
from workbench.db.models import TurnDraft
from workbench.db.repositories import ConversationsRepo, ExportsRepo
from workbench.exports import export_conversations, serialise
from workbench.storage import ObjectStore

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def people(app_db: str, jwt_secret: str) -> dict[str, Persona]:
    with psycopg.connect(app_db, autocommit=True) as conn:
        return {
            name: create_user(conn, name=name, role=role, jwt_secret=jwt_secret)
            for name, role in (("owner", "user"), ("other", "user"), ("admin", "admin"))
        }


async def _conversation(app_db: str, owner: Persona) -> str:
    now = datetime.now(UTC)
    async with recorded_as(app_db, owner) as conn:
        repo = ConversationsRepo(conn)
        conversation = await repo.start(room_name="export-test")
        await repo.add_turns(
            [
                TurnDraft(
                    conversation_id=conversation.id,
                    idx=0,
                    role="user",
                    text="What is the time?",
                    started_at=now,
                    ended_at=now,
                    stt_s=0.3,
                ),
                TurnDraft(
                    conversation_id=conversation.id,
                    idx=1,
                    role="agent",
                    text="It is noon.",
                    started_at=now,
                    ended_at=now,
                    v2v_s=1.1,
                ),
            ]
        )
    return str(conversation.id)


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
async def test_owner_exports_and_only_the_owner_reads_the_file(
    app_db: str, people: dict[str, Persona], tmp_path: Path, fmt: str
) -> None:
    store = ObjectStore(str(tmp_path / "objects"))
    conversation_id = UUID(await _conversation(app_db, people["owner"]))
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        export = await export_conversations(
            conn,
            store,
            people["owner"].claims,
            fmt=fmt,
            conversation_id=conversation_id,  # type: ignore[arg-type]
        )
    assert export.status == "ready"
    assert export.object_path is not None
    async with session_as(app_db, people["owner"]) as conn:
        data = await store.read(conn, bucket="exports", path=export.object_path)
    frame = (
        pd.DataFrame(json.loads(data)["turns"])
        if fmt == "json"
        else pd.read_csv(io.BytesIO(data))
        if fmt == "csv"
        else pd.read_parquet(io.BytesIO(data))
    )
    assert list(frame["text"]) == ["What is the time?", "It is noon."]
    async with session_as(app_db, people["other"]) as conn:
        with pytest.raises(NotFound):
            await store.read(conn, bucket="exports", path=export.object_path)


async def test_exporting_someone_elses_conversation_is_refused(
    app_db: str, people: dict[str, Persona], tmp_path: Path
) -> None:
    conversation_id = UUID(await _conversation(app_db, people["owner"]))
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        with pytest.raises(PermissionDenied):
            await export_conversations(
                conn,
                ObjectStore(str(tmp_path)),
                people["other"].claims,
                fmt="csv",
                conversation_id=conversation_id,
            )


async def test_my_exports_are_mine_even_for_an_admin(
    app_db: str, people: dict[str, Persona]
) -> None:
    """An admin may read every export (RLS), but History's list of "your exports" is theirs."""
    async with session_as(app_db, people["owner"]) as conn:
        owners = await ExportsRepo(conn).request(format="csv")
    async with session_as(app_db, people["admin"]) as conn:
        admins = await ExportsRepo(conn).request(format="json")
        mine = {e.id for e in await ExportsRepo(conn).mine()}
    assert admins.id in mine
    assert owners.id not in mine


async def test_exports_are_limited_per_hour_and_in_size(
    app_db: str, jwt_secret: str, tmp_path: Path
) -> None:
    """Exports are built in memory: a few an hour, each of a bounded number of turns."""
    with psycopg.connect(app_db, autocommit=True) as conn:
        eager = create_user(conn, name="eager", role="user", jwt_secret=jwt_secret)
        per_hour, max_turns = conn.execute(
            "select per_hour, max_turns from public.export_limits()"
        ).fetchone()  # type: ignore[misc]
    assert max_turns >= 10_000
    conversation_id = UUID(await _conversation(app_db, eager))  # two turns
    store = ObjectStore(str(tmp_path / "objects"))
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        # One export over a size limit of one turn: refused, and the reason is on its row.
        with pytest.raises(LimitReached, match="export one conversation at a time"):
            await export_conversations(conn, store, eager.claims, fmt="csv", max_turns=1)
        for _ in range(per_hour - 1):  # the rest of the hour's allowance
            done = await export_conversations(
                conn, store, eager.claims, fmt="csv", conversation_id=conversation_id
            )
            assert done.status == "ready"
        with pytest.raises(LimitReached, match=f"at most {per_hour} exports an hour"):
            await export_conversations(conn, store, eager.claims, fmt="json")
    async with session_as(app_db, eager) as conn:
        mine = await ExportsRepo(conn).mine()
    assert len(mine) == per_hour  # the refused one was never made
    assert [e.status for e in mine].count("failed") == 1


async def test_serialising_an_export_leaves_the_event_loop_free(
    app_db: str, people: dict[str, Persona], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web server's one event loop serves every open page: exports serialise elsewhere."""
    loop_thread = threading.get_ident()
    ran_on: list[int] = []

    def recording(rows: list[dict[str, object]], fmt: str) -> bytes:
        ran_on.append(threading.get_ident())
        return serialise(rows, fmt)  # type: ignore[arg-type]

    monkeypatch.setattr(exports, "serialise", recording)
    conversation_id = UUID(await _conversation(app_db, people["owner"]))
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        export = await export_conversations(
            conn,
            ObjectStore(str(tmp_path / "objects")),
            people["owner"].claims,
            fmt="parquet",
            conversation_id=conversation_id,
        )
    assert export.status == "ready"
    assert ran_on
    assert loop_thread not in ran_on
