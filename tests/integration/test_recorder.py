"""Journal-first persistence: replays are idempotent, outages lose nothing, crashes end as interrupted."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import soundfile

from agent.recorder import (
    ConversationInfo,
    ConversationRecorder,
    keep_recovering,
    recover_journals,
)
from tests.support.personas import Persona, create_user
from workbench.db.connection import Connect, fresh_connections
from workbench.db.models import TurnDraft
from workbench.storage import ObjectStore

pytestmark = pytest.mark.integration


@pytest.fixture
def owner(app_db: str, jwt_secret: str) -> Persona:
    with psycopg.connect(app_db, autocommit=True) as conn:
        return create_user(conn, name="owner", role="user", jwt_secret=jwt_secret)


def _connector(dsn: str) -> Connect:
    return fresh_connections(dsn, name="test-recorder", connect_timeout_s=2)


def _draft(conversation_id: uuid.UUID, idx: int) -> TurnDraft:
    now = datetime.now(UTC)
    return TurnDraft(
        conversation_id=conversation_id,
        idx=idx,
        role="user" if idx % 2 == 0 else "agent",
        text=f"turn {idx}",
        started_at=now,
        ended_at=now + timedelta(seconds=1),
        v2v_s=0.8 if idx % 2 else None,
    )


async def _recover(tmp_path: Path, dsn: str) -> int:
    """What the next worker does at start: store the journals under tmp_path/journal."""
    return await recover_journals(
        tmp_path / "journal",
        connect=_connector(dsn),
        store=ObjectStore(str(tmp_path / "o")),
    )


def _rows(dsn: str, conversation_id: uuid.UUID) -> tuple[str | None, list[tuple[Any, ...]]]:
    with psycopg.connect(dsn) as conn:
        status = conn.execute(
            "select status from conversations where id = %s", [conversation_id]
        ).fetchone()
        turns = conn.execute(
            "select idx, text, audio_path from turns where conversation_id = %s order by idx",
            [conversation_id],
        ).fetchall()
    return (status[0] if status else None), turns


async def test_outage_is_bridged_by_the_journal(
    app_db: str, owner: Persona, tmp_path: Path
) -> None:
    assert owner.id is not None
    info = ConversationInfo(uuid.uuid4(), owner.id, "room-x", None, {"name": "test"})
    dead = _connector("postgresql://postgres:x@127.0.0.1:1/postgres")  # nothing listens on port 1
    store = ObjectStore(str(tmp_path / "objects"))
    recorder = ConversationRecorder(
        info, connect=dead, store=store, journal_dir=tmp_path / "journal", retry_interval_s=0.05
    )
    await recorder.start()
    pcm = (0.2 * np.sin(np.arange(8000) / 5) * 32767).astype(np.int16)
    await recorder.add_turn(_draft(info.conversation_id, 0), pcm=pcm, sample_rate_hz=16_000)
    await recorder.add_turn(_draft(info.conversation_id, 1))
    assert _rows(app_db, info.conversation_id) == (None, [])  # nothing reached the database...
    assert (
        tmp_path / "journal" / str(info.conversation_id) / "journal.jsonl"
    ).exists()  # ...but all is kept

    recorder._connect = _connector(app_db)  # the database is back
    await recorder.end("completed")
    await recorder.aclose()
    status, turns = _rows(app_db, info.conversation_id)
    assert status == "completed"
    assert [t[:2] for t in turns] == [(0, "turn 0"), (1, "turn 1")]
    audio_path = turns[0][2]
    assert audio_path == f"{owner.id}/{info.conversation_id}/turn-0000-user.wav"
    data, rate = soundfile.read(
        io.BytesIO((tmp_path / "objects" / "audio" / audio_path).read_bytes()), dtype="int16"
    )
    assert rate == 16_000
    assert np.array_equal(data, pcm)
    assert not (
        tmp_path / "journal" / str(info.conversation_id)
    ).exists()  # stored, so the journal is gone


async def test_a_turn_longer_than_the_audio_limit_keeps_its_start_and_lands(
    app_db: str, owner: Persona, tmp_path: Path
) -> None:
    """A turn's audio past max_audio_s is cut, not refused: the turn and the rest of the
    conversation are stored and the journal is cleared (it used to stay quarantined)."""
    assert owner.id is not None
    info = ConversationInfo(uuid.uuid4(), owner.id, "room-long", None, {"name": "test"})
    recorder = ConversationRecorder(
        info,
        connect=_connector(app_db),
        store=ObjectStore(str(tmp_path / "objects")),
        journal_dir=tmp_path / "journal",
        max_audio_s=2.0,
    )
    await recorder.start()
    rate = 16_000
    at_limit = np.full(2 * rate, 100, dtype=np.int16)
    over = np.concatenate([at_limit, np.full(rate, 200, dtype=np.int16)])
    await recorder.add_turn(_draft(info.conversation_id, 0), pcm=at_limit, sample_rate_hz=rate)
    await recorder.add_turn(_draft(info.conversation_id, 2), pcm=over, sample_rate_hz=rate)
    await recorder.end("completed")
    await recorder.aclose()
    status, turns = _rows(app_db, info.conversation_id)
    assert status == "completed"
    assert [t[0] for t in turns] == [0, 2]
    for _, _, audio_path in turns:
        data, _ = soundfile.read(
            io.BytesIO((tmp_path / "objects" / "audio" / audio_path).read_bytes()), dtype="int16"
        )
        assert np.array_equal(data, at_limit)  # all of the first, the first 2 s of the second
    assert not (tmp_path / "journal" / str(info.conversation_id)).exists()
    assert not (tmp_path / "journal" / "quarantine").exists()


async def test_a_crashed_workers_conversation_ends_interrupted(
    app_db: str, owner: Persona, tmp_path: Path
) -> None:
    assert owner.id is not None
    conversation_id = uuid.uuid4()
    folder = tmp_path / "journal" / str(conversation_id)
    _crashed_journal(folder, owner, conversation_id)
    recovered = await _recover(tmp_path, app_db)
    assert recovered == 1
    status, turns = _rows(app_db, conversation_id)
    assert status == "interrupted"
    assert [t[1] for t in turns] == ["turn 0"]
    assert not folder.exists()


def _crashed_journal(folder: Path, owner: Persona, conversation_id: uuid.UUID) -> Path:
    """What a worker that died after one turn leaves behind (its owner pid is gone)."""
    folder.mkdir(parents=True)
    records = [
        {
            "type": "start",
            "conversation_id": str(conversation_id),
            "owner_id": str(owner.id),
            "room_name": "torn",
            "prompt": None,
            "model_specs": {},
        },
        {"type": "turn", "turn": _draft(conversation_id, 0).model_dump(mode="json")},
    ]
    journal = folder / "journal.jsonl"
    journal.write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "owner.pid").write_text(
        json.dumps({"pid": 999_999_999, "start_ticks": 1, "command": []})
    )
    return journal


async def test_a_torn_last_line_is_dropped_and_the_rest_recovered(
    app_db: str, owner: Persona, tmp_path: Path
) -> None:
    """A crash (or a full disk) mid-write leaves half a line: the worker still starts and stores the rest."""
    conversation_id = uuid.uuid4()
    folder = tmp_path / "journal" / str(conversation_id)
    journal = _crashed_journal(folder, owner, conversation_id)
    turn = json.dumps({"type": "turn", "turn": _draft(conversation_id, 1).model_dump(mode="json")})
    with journal.open("a") as handle:
        handle.write(turn[: len(turn) // 2])  # the process died here
    recovered = await _recover(tmp_path, app_db)
    assert recovered == 1
    status, turns = _rows(app_db, conversation_id)
    assert status == "interrupted"
    assert [t[1] for t in turns] == ["turn 0"]


async def test_an_unreadable_journal_is_quarantined_not_fatal(
    app_db: str, owner: Persona, tmp_path: Path
) -> None:
    conversation_id, healthy_id = uuid.uuid4(), uuid.uuid4()
    journal = _crashed_journal(tmp_path / "journal" / str(conversation_id), owner, conversation_id)
    journal.write_text("\x00garbage\n" + journal.read_text())  # not a torn tail: lost
    _crashed_journal(tmp_path / "journal" / str(healthy_id), owner, healthy_id)
    recovered = await _recover(tmp_path, app_db)
    assert recovered == 1  # the readable one, despite its neighbour
    assert _rows(app_db, healthy_id)[0] == "interrupted"
    kept = tmp_path / "journal" / "quarantine" / str(conversation_id)
    assert (kept / "journal.jsonl").exists()  # kept for a person to look at
    assert "the line at byte 0 is not JSON" in (kept / "REASON").read_text()
    # The next start passes over the quarantine quietly.
    assert await _recover(tmp_path, app_db) == 0


class CountingStore(ObjectStore):
    """An object store that counts uploads (a turn's audio must go up once)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.puts: list[str] = []

    async def put(self, conn: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.puts.append(kwargs["name"])
        return await super().put(conn, **kwargs)


async def test_each_turn_is_stored_once_not_resent_with_every_new_turn(
    app_db: str, owner: Persona, tmp_path: Path
) -> None:
    assert owner.id is not None
    info = ConversationInfo(uuid.uuid4(), owner.id, "room-once", None, {})
    store = CountingStore(str(tmp_path / "objects"))
    recorder = ConversationRecorder(
        info, connect=_connector(app_db), store=store, journal_dir=tmp_path / "journal"
    )
    await recorder.start()
    pcm = (0.2 * np.sin(np.arange(1600) / 5) * 32767).astype(np.int16)
    for idx in range(4):
        await recorder.add_turn(_draft(info.conversation_id, idx), pcm=pcm, sample_rate_hz=16_000)
        assert len(_rows(app_db, info.conversation_id)[1]) == idx + 1  # stored as it happens
    await recorder.end("completed")
    await recorder.aclose()
    assert len(store.puts) == 4  # resending every earlier turn would make 1+2+3+4 = 10
    assert _rows(app_db, info.conversation_id)[0] == "completed"


async def test_a_refused_turn_is_set_aside_and_the_rest_of_the_conversation_lands(
    app_db: str, owner: Persona, tmp_path: Path
) -> None:
    assert owner.id is not None
    info = ConversationInfo(uuid.uuid4(), owner.id, "room-refused", None, {})
    recorder = ConversationRecorder(
        info,
        connect=_connector(app_db),
        store=ObjectStore(str(tmp_path / "o")),
        journal_dir=tmp_path / "journal",
    )
    await recorder.start()
    await recorder.add_turn(_draft(info.conversation_id, 0))
    runaway = _draft(info.conversation_id, 1).model_copy(update={"text": "la " * 10_000})
    await recorder.add_turn(runaway)  # longer than turns.text allows: the database refuses it
    await recorder.add_turn(_draft(info.conversation_id, 2))
    await recorder.end("completed")
    await recorder.aclose()
    status, turns = _rows(app_db, info.conversation_id)
    assert status == "completed"
    assert [t[0] for t in turns] == [0, 2]
    kept = tmp_path / "journal" / "quarantine" / str(info.conversation_id)
    (rejected,) = [json.loads(line) for line in (kept / "rejected.jsonl").read_text().splitlines()]
    assert rejected["record"]["turn"]["idx"] == 1
    assert "turns_text_check" in rejected["reason"]
    assert "1 record(s) refused" in (kept / "REASON").read_text()


async def test_a_crashed_jobs_journal_is_stored_while_the_worker_lives(
    app_db: str, owner: Persona, tmp_path: Path
) -> None:
    """The worker's recovery thread picks a journal up without waiting for a restart."""
    stop = threading.Event()
    thread = threading.Thread(
        target=keep_recovering,
        args=(tmp_path / "journal",),
        kwargs={
            "connect": _connector(app_db),
            "store": ObjectStore(str(tmp_path / "o")),
            "interval_s": 0.2,
            "stop": stop,
        },
    )
    thread.start()
    try:
        conversation_id = uuid.uuid4()
        _crashed_journal(tmp_path / "journal" / str(conversation_id), owner, conversation_id)
        deadline = time.monotonic() + 20
        while _rows(app_db, conversation_id)[0] != "interrupted":
            assert time.monotonic() < deadline, "the crashed job's journal was not stored"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        thread.join()
