"""A conversation's journal on local disk: its typed records and how they are read and kept.

`<journal_dir>/<conversation id>/journal.jsonl` holds one JSON record per line: a
start, each completed turn (its audio in a WAV file beside it), an end.
`progress.json` says how far the records are stored; `.lock` keeps a live recorder
and a recovery from storing one folder at once; a folder the workbench cannot
store moves to `quarantine/` with its reason. Nothing here talks to the database
(`agent/recorder.py` does).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, TypeAdapter

from workbench.db.models import ConversationStatus, SessionPrompt, TurnDraft

log = logging.getLogger("workbench.agent.recorder")
QUARANTINE_DIR = "quarantine"


class StartRecord(BaseModel):
    """The conversation's start: what its row is made from."""

    type: Literal["start"] = "start"
    conversation_id: UUID
    owner_id: UUID
    room_name: str | None
    prompt: SessionPrompt | None
    model_specs: dict[str, Any]


class AudioFile(BaseModel):
    """A turn's audio: its object name in the `audio` bucket and its file in the folder."""

    name: str
    file: str


class TurnRecord(BaseModel):
    """A completed turn, with its audio when there is any."""

    type: Literal["turn"] = "turn"
    turn: TurnDraft
    audio: AudioFile | None = None


class EndRecord(BaseModel):
    """The conversation's end and how it ended."""

    type: Literal["end"] = "end"
    status: ConversationStatus


JournalRecord = Annotated[StartRecord | TurnRecord | EndRecord, Field(discriminator="type")]
_RECORD: TypeAdapter[JournalRecord] = TypeAdapter(JournalRecord)


def parse_record(raw: dict[str, Any]) -> StartRecord | TurnRecord | EndRecord:
    """The typed record of a journal line; pydantic.ValidationError for one it cannot be."""
    return _RECORD.validate_python(raw)


def record_line(record: StartRecord | TurnRecord | EndRecord) -> str:
    """A record as its journal line (with the newline)."""
    return record.model_dump_json() + "\n"


class UnreadableJournal(ValueError):
    """A journal whose records cannot be read (not just a torn last line)."""


class FolderBusy(RuntimeError):
    """Another process is storing this journal folder right now."""


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Exclusive, non-blocking: a live recorder and a recovery never store one folder together."""
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusy(folder.name) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def read_journal(
    journal: Path, offset: int = 0, *, repair: bool = False
) -> tuple[list[tuple[dict[str, Any], int]], int]:
    """The journal's records from byte `offset` on, each with the offset just past it; and the end offset.

    A record is complete once its newline is written. An unfinished last line is
    left unread while its writer may still be writing it; with `repair` (its
    writer is gone) it is a torn line (a crash or a full disk mid-write) and is
    cut off: the turn it held was not complete, so the records before it are the
    conversation, and an appended record starts on a line of its own. Anything
    worse raises UnreadableJournal.
    """
    with journal.open("rb") as handle:
        handle.seek(offset)
        raw = handle.read()
    *lines, tail = raw.split(b"\n")
    records: list[tuple[dict[str, Any], int]] = []
    kept = offset  # end of the whole, readable lines
    for line in lines:
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError:
                raise UnreadableJournal(f"{journal}: the line at byte {kept} is not JSON") from None
            if not isinstance(record, dict) or "type" not in record:
                raise UnreadableJournal(
                    f"{journal}: the line at byte {kept} is not a journal record"
                )
            records.append((record, kept + len(line) + 1))
        kept += len(line) + 1
    if tail and repair:
        log.warning(
            "journal %s: dropped a torn last line (%d bytes)", journal.parent.name, len(tail)
        )
        with journal.open("r+b") as handle:
            handle.truncate(kept)
    if offset == 0 and records[:1] and records[0][0]["type"] != "start":
        raise UnreadableJournal(f"{journal} does not begin with a start record")
    if offset == 0 and not records and (repair or tail):
        raise UnreadableJournal(f"{journal} holds no complete record")
    return records, kept


def start_record(journal: Path) -> StartRecord:
    """The journal's first record (the conversation's start), without reading the rest."""
    with journal.open("rb") as handle:
        first = handle.readline()
    try:
        record = json.loads(first)
    except ValueError:
        raise UnreadableJournal(f"{journal}: the first line is not JSON") from None
    if not isinstance(record, dict) or record.get("type") != "start":
        raise UnreadableJournal(f"{journal} does not begin with a start record")
    try:
        start = parse_record(record)
    except ValueError as exc:  # pydantic's ValidationError is one
        raise UnreadableJournal(f"{journal}: its start record is not readable ({exc})") from exc
    assert isinstance(start, StartRecord)
    return start


def quarantine(folder: Path, reason: str) -> Path:
    """Move a journal folder the worker cannot store aside (`<journal dir>/quarantine/`), with why."""
    target = folder.parent / QUARANTINE_DIR / folder.name
    target.parent.mkdir(parents=True, exist_ok=True)
    folder.rename(target)
    (target / "REASON").write_text(reason + "\n")
    log.error("quarantined journal %s: %s", folder.name, reason)
    return target


@dataclass
class JournalProgress:
    """How far a journal folder is stored (`progress.json`, replaced atomically)."""

    offset: int = 0
    ended: bool = False
    refused: int = 0

    @classmethod
    def load(cls, folder: Path) -> JournalProgress:
        try:
            return cls(**json.loads((folder / "progress.json").read_text()))
        except FileNotFoundError:
            return cls()

    def save(self, folder: Path) -> None:
        tmp = folder / "progress.json.tmp"
        tmp.write_text(json.dumps(self.__dict__))
        tmp.replace(folder / "progress.json")
