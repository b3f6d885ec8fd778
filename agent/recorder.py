"""Persist a conversation as it goes, surviving a database outage and a worker crash.

Every event (start, each completed turn with its audio, end) is appended to a
local journal first (`<journal_dir>/<conversation id>.jsonl`, audio beside it),
then replayed into Postgres and the object store. Replays are idempotent, so a
flush that fails half-way (the database went away) is simply tried again until
it succeeds; when the conversation has ended and everything is stored, the
journal is deleted. A journal left without an end by a crashed worker is closed
as `interrupted` by the next worker (`recover_journals`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import psycopg

from workbench.audio import wav_bytes
from workbench.db.connection import service_session
from workbench.db.errors import Conflict, DataError, NotFound
from workbench.db.models import SessionPrompt, TurnDraft
from workbench.db.repositories import ConversationsRepo
from workbench.stack.processes import PidFile
from workbench.storage import ObjectStore

log = logging.getLogger("workbench.agent.recorder")
QUARANTINE_DIR = "quarantine"
Connect = Callable[[], Awaitable[psycopg.AsyncConnection[Any]]]


@dataclass(frozen=True)
class ConversationInfo:
    """What the conversation row is made from."""

    conversation_id: UUID
    owner_id: UUID
    room_name: str
    prompt: SessionPrompt | None
    model_specs: dict[str, Any]


class ConversationRecorder:
    """Journal-first persistence of one conversation."""

    def __init__(
        self,
        info: ConversationInfo,
        *,
        connect: Connect,
        store: ObjectStore,
        journal_dir: Path,
        retry_interval_s: float = 2.0,
    ) -> None:
        self.info = info
        self._connect = connect
        self._store = store
        self._folder = journal_dir / str(info.conversation_id)
        self._journal = self._folder / "journal.jsonl"
        self._retry_interval_s = retry_interval_s
        self._lock = asyncio.Lock()
        self._retry_task: asyncio.Task[None] | None = None
        self._next_idx = 0
        self.flushed = False

    def _append(self, record: dict[str, Any]) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        with self._journal.open("a") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
            handle.flush()

    async def start(self) -> None:
        """Record the conversation's start (and which live process owns the journal)."""
        info = self.info
        self._folder.mkdir(parents=True, exist_ok=True)
        PidFile(self._folder / "owner.pid").write(os.getpid(), ["agent"])
        self._append(
            {
                "type": "start",
                "conversation_id": str(info.conversation_id),
                "owner_id": str(info.owner_id),
                "room_name": info.room_name,
                "prompt": info.prompt.model_dump(mode="json") if info.prompt else None,
                "model_specs": info.model_specs,
            }
        )
        await self.flush()

    def next_index(self) -> int:
        """The index the next turn gets."""
        return self._next_idx

    async def add_turn(
        self, draft: TurnDraft, *, pcm: np.ndarray | None = None, sample_rate_hz: int = 0
    ) -> None:
        """Record a completed turn and, if given, its audio (mono int16)."""
        self._next_idx = max(self._next_idx, draft.idx + 1)
        record: dict[str, Any] = {"type": "turn", "turn": draft.model_dump(mode="json")}
        if pcm is not None and pcm.size and sample_rate_hz:
            name = f"{self.info.conversation_id}/turn-{draft.idx:04d}-{draft.role}.wav"
            local = self._folder / f"turn-{draft.idx:04d}-{draft.role}.wav"
            self._folder.mkdir(parents=True, exist_ok=True)
            local.write_bytes(wav_bytes(pcm, sample_rate_hz))
            record["turn"]["audio_path"] = f"{self.info.owner_id}/{name}"
            record["audio"] = {"name": name, "file": local.name}
        self._append(record)
        await self.flush()

    async def end(self, status: str = "completed") -> None:
        """Record the end and make a last attempt to store everything."""
        self._append({"type": "end", "status": status})
        await self.flush()

    async def aclose(self) -> None:
        """Stop retrying (what is not stored stays in the journal for the next worker)."""
        if self._retry_task is not None:
            self._retry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry_task

    async def flush(self) -> bool:
        """Replay the journal into the database; on failure retry in the background."""
        async with self._lock:
            try:
                done = await replay(self._folder, connect=self._connect, store=self._store)
            except (psycopg.OperationalError, OSError, DataError) as exc:
                log.warning(
                    "storing conversation %s failed (%s); will retry",
                    self.info.conversation_id,
                    type(exc).__name__,
                )
                self._schedule_retry()
                return False
        self.flushed = done
        return True

    def _schedule_retry(self) -> None:
        if self._retry_task is not None and not self._retry_task.done():
            return

        async def retry() -> None:
            while True:
                await asyncio.sleep(self._retry_interval_s)
                if await self.flush():
                    return

        self._retry_task = asyncio.create_task(retry())


class UnreadableJournal(ValueError):
    """A journal whose records cannot be read (not just a torn last line)."""


def read_journal(journal: Path) -> list[dict[str, Any]]:
    """The journal's records. A torn last line (a crash or a full disk mid-write) is cut off.

    That line is what the journal exists for: the turn it held was not complete,
    so the records before it are the conversation. It is removed from the file,
    so an appended record starts on a line of its own. Anything worse raises
    UnreadableJournal.
    """
    raw = journal.read_bytes()
    lines = raw.split(b"\n")
    records: list[dict[str, Any]] = []
    kept = 0  # bytes of whole, readable lines
    for number, line in enumerate(lines):
        if not line.strip():
            kept += len(line) + 1
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if any(rest.strip() for rest in lines[number + 1 :]):
                raise UnreadableJournal(f"{journal}: line {number + 1} is not JSON") from None
            log.warning(
                "journal %s: dropped a torn last line (%d bytes)", journal.parent.name, len(line)
            )
            with journal.open("r+b") as handle:
                handle.truncate(kept)
            break
        if not isinstance(record, dict) or "type" not in record:
            raise UnreadableJournal(f"{journal}: line {number + 1} is not a journal record")
        records.append(record)
        kept += len(line) + 1
    if not records or records[0]["type"] != "start":
        raise UnreadableJournal(f"{journal} does not begin with a start record")
    return records


def quarantine(folder: Path, reason: str) -> Path:
    """Move a journal folder the worker cannot store aside (`<journal dir>/quarantine/`), with why."""
    target = folder.parent / QUARANTINE_DIR / folder.name
    target.parent.mkdir(parents=True, exist_ok=True)
    folder.rename(target)
    (target / "REASON").write_text(reason + "\n")
    log.error("quarantined journal %s: %s", folder.name, reason)
    return target


async def replay(folder: Path, *, connect: Connect, store: ObjectStore) -> bool:
    """Store a journal folder's events (idempotently); True if the conversation ended and the folder is gone."""
    journal = folder / "journal.jsonl"
    if not journal.exists():
        return True
    records = read_journal(journal)
    start = records[0]
    owner_id = UUID(start["owner_id"])
    conversation_id = UUID(start["conversation_id"])
    conn = await connect()
    try:
        async with service_session(conn, acting_for=owner_id):
            repo = ConversationsRepo(conn)
            prompt = SessionPrompt.model_validate(start["prompt"]) if start["prompt"] else None
            await repo.start(
                owner_id=owner_id,
                conversation_id=conversation_id,
                room_name=start["room_name"],
                prompt=prompt,
                model_specs=start["model_specs"],
            )
            turns = [TurnDraft.model_validate(r["turn"]) for r in records if r["type"] == "turn"]
            if turns:
                await repo.add_turns(turns)
            for record in records:
                if record["type"] == "turn" and "audio" in record:
                    with contextlib.suppress(Conflict):  # stored by an earlier replay
                        await store.put(
                            conn,
                            bucket="audio",
                            owner_id=owner_id,
                            name=record["audio"]["name"],
                            data=(folder / record["audio"]["file"]).read_bytes(),
                            content_type="audio/wav",
                        )
            ends = [r for r in records if r["type"] == "end"]
            if ends:
                with contextlib.suppress(NotFound):  # already ended by an earlier replay
                    await repo.end(conversation_id, ends[-1]["status"])
    finally:
        await conn.close()
    if any(r["type"] == "end" for r in records):
        shutil.rmtree(folder, ignore_errors=True)
        return True
    return False


async def recover_journals(
    journal_dir: Path, *, connect: Connect, store: ObjectStore, live: set[UUID]
) -> int:
    """Close journals a crashed worker left (not in `live`) as interrupted and store them; how many."""
    recovered = 0
    if not journal_dir.exists():
        return 0
    for folder in sorted(p for p in journal_dir.iterdir() if p.is_dir()):
        if folder.name == QUARANTINE_DIR:
            continue
        try:
            conversation = UUID(folder.name)
        except ValueError:
            log.warning(
                "journal dir %s: %s is not a conversation's folder", journal_dir, folder.name
            )
            continue
        if conversation in live or PidFile(folder / "owner.pid").live_pid() is not None:
            continue  # a running worker still owns this conversation
        journal = folder / "journal.jsonl"
        try:
            records = read_journal(journal) if journal.exists() else []
        except UnreadableJournal as exc:
            quarantine(folder, str(exc))  # never a reason not to start
            continue
        if records and not any(r["type"] == "end" for r in records):
            with journal.open("a") as handle:
                handle.write(json.dumps({"type": "end", "status": "interrupted"}) + "\n")
        try:
            await replay(folder, connect=connect, store=store)
            recovered += 1
        except (psycopg.OperationalError, OSError, DataError) as exc:
            log.warning("could not recover journal %s yet (%s)", folder.name, type(exc).__name__)
    return recovered
