"""The conversation journal on disk, without a database: typed records, torn lines, locks, progress."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pydantic
import pytest

from agent.journal import (
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
from workbench.db.models import TurnDraft

pytestmark = pytest.mark.unit

CONVERSATION, OWNER = uuid.uuid4(), uuid.uuid4()
NOW = datetime(2026, 12, 8, tzinfo=UTC)


def _start() -> StartRecord:
    return StartRecord(
        conversation_id=CONVERSATION,
        owner_id=OWNER,
        room_name="conv-x",
        prompt=None,
        model_specs={"name": "cpu-small"},
    )


def _turn(idx: int) -> TurnRecord:
    draft = TurnDraft(
        conversation_id=CONVERSATION, idx=idx, role="user", text="hi", started_at=NOW, ended_at=NOW
    )
    return TurnRecord(turn=draft, audio=AudioFile(name=f"{CONVERSATION}/t.wav", file="t.wav"))


def _journal(tmp_path: Path, *records: StartRecord | TurnRecord | EndRecord) -> Path:
    journal = tmp_path / "journal.jsonl"
    journal.write_text("".join(record_line(r) for r in records))
    return journal


def test_records_round_trip_through_their_lines(tmp_path: Path) -> None:
    journal = _journal(tmp_path, _start(), _turn(0), EndRecord(status="completed"))
    records, end = read_journal(journal)
    assert end == journal.stat().st_size
    typed = [parse_record(raw) for raw, _ in records]
    assert [type(r) for r in typed] == [StartRecord, TurnRecord, EndRecord]
    assert typed[1] == _turn(0)
    assert start_record(journal) == _start()


def test_reading_on_from_an_offset_returns_only_the_newer_records(tmp_path: Path) -> None:
    journal = _journal(tmp_path, _start(), _turn(0))
    everything, _ = read_journal(journal)
    after_start = everything[0][1]
    records, _ = read_journal(journal, after_start)
    assert [parse_record(raw) for raw, _ in records] == [_turn(0)]


def test_an_unknown_record_or_a_bad_turn_is_refused_by_type() -> None:
    with pytest.raises(pydantic.ValidationError):
        parse_record({"type": "telemetry"})
    with pytest.raises(pydantic.ValidationError):
        parse_record({"type": "turn", "turn": {"idx": -1}})
    with pytest.raises(pydantic.ValidationError):
        parse_record({"type": "end", "status": "exploded"})


def test_a_torn_last_line_waits_for_its_writer_and_is_cut_off_without_one(tmp_path: Path) -> None:
    journal = _journal(tmp_path, _start())
    whole = journal.stat().st_size
    with journal.open("a") as handle:
        handle.write('{"type": "turn", "tu')  # a crash mid-write
    records, end = read_journal(journal)
    assert len(records) == 1
    assert end == whole  # left alone: its writer may finish it
    records, end = read_journal(journal, repair=True)
    assert (len(records), end, journal.stat().st_size) == (1, whole, whole)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not json\n", "not JSON"),
        ('["a list"]\n', "not a journal record"),
        (record_line(EndRecord(status="completed")), "does not begin with a start record"),
    ],
)
def test_a_journal_that_cannot_be_read_says_why(tmp_path: Path, text: str, why: str) -> None:
    journal = tmp_path / "journal.jsonl"
    journal.write_text(text)
    with pytest.raises(UnreadableJournal, match=why):
        read_journal(journal)


def test_a_journal_with_only_a_torn_line_holds_no_record(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    journal.write_text('{"type": "sta')
    with pytest.raises(UnreadableJournal, match="no complete record"):
        read_journal(journal, repair=True)


def test_one_process_at_a_time_stores_a_folder(tmp_path: Path) -> None:
    with folder_lock(tmp_path), pytest.raises(FolderBusy), folder_lock(tmp_path):
        pass
    with folder_lock(tmp_path):  # released
        pass


def test_progress_is_kept_across_restarts(tmp_path: Path) -> None:
    assert JournalProgress.load(tmp_path) == JournalProgress()
    JournalProgress(offset=120, ended=True, refused=1).save(tmp_path)
    assert JournalProgress.load(tmp_path) == JournalProgress(offset=120, ended=True, refused=1)
    assert not (tmp_path / "progress.json.tmp").exists()


def test_a_quarantined_folder_keeps_its_records_and_says_why(tmp_path: Path) -> None:
    folder = tmp_path / str(CONVERSATION)
    folder.mkdir()
    _journal(folder, _start())
    kept = quarantine(folder, "the database refused the conversation itself")
    assert kept == tmp_path / "quarantine" / str(CONVERSATION)
    assert json.loads((kept / "journal.jsonl").read_text().splitlines()[0])["type"] == "start"
    assert "refused" in (kept / "REASON").read_text()
