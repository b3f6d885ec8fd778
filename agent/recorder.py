"""Persist a conversation as it goes, surviving a database outage and a worker crash.

Every event (start, each completed turn with its audio, end) is appended to a
local journal first (`<journal_dir>/<conversation id>/journal.jsonl`, audio
beside it, written off the event loop), then stored in Postgres and the object
store. Storing is incremental: `progress.json` records how far the journal is
stored, so each flush sends only the records after it, one transaction each,
and a conversation's cost grows with its length, not its square. A flush that
fails on a connection error (the database went away) is retried until it
succeeds; a record the database refuses (a constraint, a deleted owner) is set
aside in `rejected.jsonl` with its reason and the rest of the conversation lands.
When the conversation has ended and everything is stored, the journal is
deleted (or, if anything was refused, moved to `quarantine/` for a person).

A journal left without an end by a crashed job is closed as `interrupted` by
`recover_journals`, which the worker runs at start and then periodically while
it lives. A lock file keeps a live recorder and a recovery from storing the same
folder at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
import pydantic

from agent.journal import (
    QUARANTINE_DIR,
    AudioFile,
    EndRecord,
    FolderBusy,
    JournalProgress,
    StartRecord,
    TurnRecord,
    UnreadableJournal,
    folder_lock,
    parse_record,
    quarantine,
    read_journal,
    record_line,
    start_record,
)
from agent.metrics import DATABASE_ERRORS
from workbench.audio import wav_bytes
from workbench.db.connection import Connect, service_session
from workbench.db.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from workbench.db.models import ConversationStatus, SessionPrompt, TurnDraft
from workbench.db.repositories import ConversationsRepo
from workbench.processes import PidFile
from workbench.storage import ObjectStore

log = logging.getLogger("workbench.agent.recorder")
# A connection error or a full disk passes; the record is tried again later.
TRANSIENT = (psycopg.OperationalError, OSError)
# The database (or the record itself) says no: trying again cannot help.
REFUSED = (InvalidInput, PermissionDenied, pydantic.ValidationError, KeyError, ValueError)


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
        max_audio_s: float = 300.0,
    ) -> None:
        """`max_audio_s`: the longest audio kept with one turn (the rest is cut, the
        turn is kept): a longer one could not be stored and would hold its journal back."""
        self.info = info
        self._max_audio_s = max_audio_s
        self._connect = connect
        self._store = store
        self._folder = journal_dir / str(info.conversation_id)
        self._journal = self._folder / "journal.jsonl"
        self._retry_interval_s = retry_interval_s
        self._write_lock = asyncio.Lock()  # appends land in call order
        self._flush_lock = asyncio.Lock()
        self._retry_task: asyncio.Task[None] | None = None
        self._next_idx = 0
        self._given_up = False  # the database refused the conversation itself

    async def _append(
        self, record: StartRecord | TurnRecord | EndRecord, audio: tuple[Path, bytes] | None = None
    ) -> None:
        # File writes (a WAV can be megabytes) go to a thread: the event loop carries
        # the live conversation's audio.
        def write() -> None:
            self._folder.mkdir(parents=True, exist_ok=True)
            if audio is not None:
                audio[0].write_bytes(audio[1])
            with self._journal.open("a") as handle:
                handle.write(record_line(record))
                handle.flush()

        async with self._write_lock:
            await asyncio.to_thread(write)

    async def start(self) -> None:
        """Record the conversation's start (and which live process owns the journal)."""
        info = self.info
        self._folder.mkdir(parents=True, exist_ok=True)
        PidFile(self._folder / "owner.pid").write(os.getpid(), ["agent"])
        await self._append(
            StartRecord(
                conversation_id=info.conversation_id,
                owner_id=info.owner_id,
                room_name=info.room_name,
                prompt=info.prompt,
                model_specs=info.model_specs,
            )
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
        record = TurnRecord(turn=draft)
        audio = None
        if pcm is not None and pcm.size and sample_rate_hz:
            keep = int(self._max_audio_s * sample_rate_hz)
            if pcm.size > keep:
                log.warning(
                    "turn %d has %.0f s of audio; kept its first %.0f s (max_turn_audio_s)",
                    draft.idx,
                    pcm.size / sample_rate_hz,
                    self._max_audio_s,
                )
                pcm = pcm[:keep]
            name = f"{self.info.conversation_id}/turn-{draft.idx:04d}-{draft.role}.wav"
            local = self._folder / f"turn-{draft.idx:04d}-{draft.role}.wav"
            audio = (local, await asyncio.to_thread(wav_bytes, pcm, sample_rate_hz))
            record.turn = draft.model_copy(update={"audio_path": f"{self.info.owner_id}/{name}"})
            record.audio = AudioFile(name=name, file=local.name)
        await self._append(record, audio)
        await self.flush()

    async def end(self, status: ConversationStatus = "completed") -> None:
        """Record the end and make a last attempt to store everything."""
        await self._append(EndRecord(status=status))
        await self.flush()

    async def aclose(self) -> None:
        """Stop retrying (what is not stored stays in the journal for the recovery)."""
        if self._retry_task is not None:
            self._retry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry_task

    async def flush(self) -> bool:
        """Store the journal's new records; on a connection error retry in the background."""
        async with self._flush_lock:
            if self._given_up:
                return False
            try:
                await replay(self._folder, connect=self._connect, store=self._store)
            except UnreadableJournal as exc:
                # Kept for a person; the rest of the conversation is journalled there too.
                self._folder = quarantine(self._folder, str(exc))
                self._journal = self._folder / "journal.jsonl"
                self._given_up = True
                return False
            except (*TRANSIENT, FolderBusy) as exc:
                if not isinstance(exc, FolderBusy):
                    stack = str(self.info.model_specs.get("name", "unnamed"))
                    DATABASE_ERRORS.labels(stack).inc()
                log.warning(
                    "storing conversation %s failed (%s); will retry",
                    self.info.conversation_id,
                    type(exc).__name__,
                )
                self._schedule_retry()
                return False
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


async def _store_record(
    conn: psycopg.AsyncConnection[Any],
    record: StartRecord | TurnRecord | EndRecord,
    start: StartRecord,
    *,
    folder: Path,
    store: ObjectStore,
) -> None:
    """Store one journal record in its own transaction; every step is idempotent."""
    async with service_session(conn, acting_for=start.owner_id):
        repo = ConversationsRepo(conn)
        match record:
            case StartRecord():
                await repo.start(
                    owner_id=record.owner_id,
                    conversation_id=record.conversation_id,
                    room_name=record.room_name,
                    prompt=record.prompt,
                    model_specs=record.model_specs,
                )
            case TurnRecord(turn=turn, audio=audio):
                await repo.add_turns([turn])
                if audio is not None:
                    data = await asyncio.to_thread((folder / audio.file).read_bytes)
                    with contextlib.suppress(Conflict):  # stored before a crash lost the progress
                        await store.put(
                            conn,
                            bucket="audio",
                            owner_id=start.owner_id,
                            name=audio.name,
                            data=data,
                            content_type="audio/wav",
                        )
            case EndRecord(status=status):
                with contextlib.suppress(NotFound):  # ended before a crash lost the progress
                    await repo.end(start.conversation_id, status)


async def replay(
    folder: Path, *, connect: Connect, store: ObjectStore, repair: bool = False
) -> bool:
    """Store a journal folder's records not stored yet; True if the conversation ended and the folder is gone.

    Raises on a connection error (retry later) and FolderBusy if another process
    is storing it. A refused record goes to `rejected.jsonl` with its reason.
    `repair` is for journals whose writer is gone (see `read_journal`).
    """
    journal = folder / "journal.jsonl"
    if not journal.exists():  # the job died before its first record: nothing to store
        shutil.rmtree(folder, ignore_errors=True)
        return True
    with folder_lock(folder):
        progress = JournalProgress.load(folder)
        records, _ = read_journal(journal, progress.offset, repair=repair)
        if records:
            start = start_record(journal)
            async with connect() as conn:
                for raw, after in records:
                    try:
                        record = parse_record(raw)
                        await _store_record(conn, record, start, folder=folder, store=store)
                    except REFUSED as exc:
                        if raw["type"] == "start":
                            raise UnreadableJournal(
                                f"the database refused the conversation itself: {exc}"
                            ) from exc
                        _set_aside(folder, raw, exc)
                        progress.refused += 1
                    progress.offset = after
                    progress.ended = progress.ended or raw["type"] == "end"
                    progress.save(folder)
    if not progress.ended:
        return False
    if progress.refused:
        quarantine(folder, f"{progress.refused} record(s) refused; see rejected.jsonl")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return True


def _set_aside(folder: Path, record: dict[str, Any], exc: Exception) -> None:
    reason = f"{type(exc).__name__}: {exc}"
    log.error("journal %s: a %s record was refused (%s)", folder.name, record["type"], reason)
    with (folder / "rejected.jsonl").open("a") as handle:
        handle.write(json.dumps({"reason": reason, "record": record}, default=str) + "\n")


async def recover_journals(journal_dir: Path, *, connect: Connect, store: ObjectStore) -> int:
    """Store journals whose job is gone, closing unended ones as interrupted; how many.

    Safe to run while the worker serves (it does, periodically): a journal whose
    owner process lives is left to its recorder.
    """
    recovered = 0
    if not journal_dir.exists():
        return 0
    for folder in sorted(p for p in journal_dir.iterdir() if p.is_dir()):
        if folder.name == QUARANTINE_DIR:
            continue
        try:
            UUID(folder.name)  # only conversations are journalled: anything else is left alone
        except ValueError:
            log.warning(
                "journal dir %s: %s is not a conversation's folder", journal_dir, folder.name
            )
            continue
        if PidFile(folder / "owner.pid").live_pid() is not None:
            continue  # a running job still records this conversation (and retries its own)
        journal = folder / "journal.jsonl"
        try:
            with folder_lock(folder):
                records = (
                    [r for r, _ in read_journal(journal, repair=True)[0]]
                    if journal.exists()
                    else []
                )
                if records and not any(r["type"] == "end" for r in records):
                    with journal.open("a") as handle:
                        handle.write(record_line(EndRecord(status="interrupted")))
            await replay(folder, connect=connect, store=store, repair=True)
            recovered += 1
        except FolderBusy:
            continue  # someone is storing it now
        except UnreadableJournal as exc:
            quarantine(folder, str(exc))  # never a reason not to start
        except TRANSIENT as exc:
            log.warning("could not recover journal %s yet (%s)", folder.name, type(exc).__name__)
    return recovered


def keep_recovering(
    journal_dir: Path,
    *,
    connect: Connect,
    store: ObjectStore,
    interval_s: float,
    stop: threading.Event,
) -> None:
    """Run `recover_journals` every `interval_s` until `stop` is set (a worker's background thread).

    A job process that crashes leaves its journal while the worker lives on;
    this stores it then, not only at the worker's next start.
    """
    while not stop.wait(interval_s):
        try:
            stored = asyncio.run(recover_journals(journal_dir, connect=connect, store=store))
        except Exception:  # the loop must outlive any one bad pass
            log.exception("journal recovery pass failed")
            continue
        if stored:
            log.info("stored %d conversation(s) left by a crashed job", stored)
