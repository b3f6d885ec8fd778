"""Evals against Supabase: recorded conversations become datasets; runs land in eval_runs under RLS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from evals.run_folder import RunFolder
from evals.runner import DatabaseSink, run_task
from evals.tasks.asr import AsrTask
from tests.support.personas import Persona, create_user, recorded_as, session_as
from tests.support.speech import pocketsphinx_utterances
from workbench.config import REPO_ROOT
from workbench.db.connection import claims_for_user
from workbench.db.errors import NotFound
from workbench.db.models import TurnDraft
from workbench.db.repositories import ConversationsRepo, EvalsRepo
from workbench.models import ModelSpec, load_spec
from workbench.storage import ObjectStore
from workbench_datasets.conversations import export_conversations
from workbench_datasets.manifest import ManifestRow, read_manifest, write_manifest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def people(app_db: str, jwt_secret: str) -> dict[str, Persona]:
    with psycopg.connect(app_db, autocommit=True) as conn:
        return {
            name: create_user(conn, name=name, role=role, jwt_secret=jwt_secret)
            for name, role in (("speaker", "user"), ("researcher", "researcher"), ("other", "user"))
        }


async def _record_conversation(app_db: str, speaker: Persona, store: ObjectStore) -> None:
    """What the agent writes: a conversation, user audio in the store, turns with texts."""
    assert speaker.id is not None
    utterances = pocketsphinx_utterances()[:2]
    t0 = datetime.now(UTC)
    async with recorded_as(app_db, speaker) as conn:
        repo = ConversationsRepo(conn)
        conversation = await repo.start(room_name="r1")
        turns = []
        for i, utterance in enumerate(utterances):
            stored = await store.put(
                conn,
                bucket="audio",
                owner_id=speaker.id,
                name=f"{conversation.id}/user-{2 * i}.wav",
                data=utterance.path.read_bytes(),
                content_type="audio/wav",
            )
            turns += [
                TurnDraft(
                    conversation_id=conversation.id,
                    idx=2 * i,
                    role="user",
                    text=f"live transcript {i}",
                    audio_path=stored.path,
                    started_at=t0,
                    ended_at=t0 + timedelta(seconds=2),
                ),
                TurnDraft(
                    conversation_id=conversation.id,
                    idx=2 * i + 1,
                    role="agent",
                    text=f"agent answer {i}.",
                    started_at=t0,
                    ended_at=t0,
                ),
            ]
        turns.append(
            TurnDraft(
                conversation_id=conversation.id,
                idx=4,
                role="user",
                text="lost audio",
                audio_path=f"{speaker.id}/{conversation.id}/gone.wav",
                started_at=t0,
                ended_at=t0,
            )
        )
        await repo.add_turns(turns)
        first = (await repo.turns(conversation.id))[0]
    async with session_as(app_db, speaker) as conn:
        # The speaker corrects the first transcript: that becomes the human reference.
        await ConversationsRepo(conn).correct_transcript(first.id, utterances[0].reference)


async def test_recorded_conversations_become_a_dataset_and_an_eval_run(
    app_db: str, people: dict[str, Persona], tmp_path: Path
) -> None:
    store = ObjectStore(str(tmp_path / "objects"))
    await _record_conversation(app_db, people["speaker"], store)

    async with session_as(app_db, people["other"]) as conn:
        nothing = await export_conversations(conn, store, tmp_path / "other")
    assert nothing.rows == []  # another user sees none of it

    async with session_as(app_db, people["researcher"]) as conn:
        export = await export_conversations(conn, store, tmp_path / "ds")
    kinds = sorted((r.reference_kind, r.reference) for r in export.rows)
    assert kinds == [
        ("human", pocketsphinx_utterances()[0].reference),
        ("live_transcript", "live transcript 1"),
    ]
    assert len(export.missing_audio) == 1
    assert [d.reference_reply for d in export.dialogues] == ["agent answer 0.", "agent answer 1."]
    assert export.dialogues[1].messages[-1].content == "live transcript 1"
    assert export.dialogues[0].messages[0].content == pocketsphinx_utterances()[0].reference

    manifest = read_manifest(write_manifest(tmp_path / "ds" / "manifest.jsonl", export.rows))
    assert not manifest.problems
    spec = load_spec(REPO_ROOT / "configs" / "models" / "whisper-tiny-en-ct2.yaml")
    task = AsrTask(spec=spec, manifest=manifest)
    assert [r.reference_kind for r in task.items] == ["human"]  # never score ASR against itself

    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        sink = DatabaseSink(conn, people["researcher"].claims)
        result = await run_task(task, folder=RunFolder(tmp_path / "run"), sink=sink, progress=False)
    assert result.metrics["wer"] < 0.3

    async with session_as(app_db, people["researcher"]) as conn:
        repo = EvalsRepo(conn)
        run = await repo.run(result.info.run_id)
        samples = await repo.samples(run.id)
    assert run.status == "completed"
    assert run.dataset_id == manifest.dataset_id
    assert run.metrics["wer"] == pytest.approx(result.metrics["wer"])
    assert run.spec["stt"]["name"] == "whisper-tiny-en-ct2"
    assert [s.hypothesis for s in samples] == [s.hypothesis for s in result.samples]
    async with session_as(app_db, people["other"]) as conn:
        assert await EvalsRepo(conn).runs() == []  # eval results are for researchers


async def test_a_resumed_run_reopens_its_row(
    app_db: str, people: dict[str, Persona], tmp_path: Path
) -> None:
    utterance = pocketsphinx_utterances()[0]
    from workbench_datasets.manifest import ManifestRow

    row = ManifestRow(
        id="u",
        audio=str(utterance.path),
        reference=utterance.reference,
        duration_s=1.0,
        source="t",
        licence="x",
    )
    manifest = read_manifest(write_manifest(tmp_path / "m.jsonl", [row]))
    fake = ModelSpec(
        name="fake",
        kind="stt",
        backend="fake",
        model="fake",
        params={"transcript": utterance.reference},
    )
    folder = RunFolder(tmp_path / "run")
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        for _ in range(2):  # the second call finds everything done and closes the run again
            sink = DatabaseSink(conn, people["researcher"].claims)
            result = await run_task(
                AsrTask(spec=fake, manifest=manifest), folder=folder, sink=sink, progress=False
            )
    assert result.resumed_from == 1
    async with session_as(app_db, people["researcher"]) as conn:
        runs = [r for r in await EvalsRepo(conn).runs() if r.id == result.info.run_id]
    assert len(runs) == 1
    assert runs[0].status == "completed"
    assert runs[0].metrics["wer"] == 0.0


async def test_a_plain_user_cannot_write_eval_runs(
    app_db: str, people: dict[str, Persona], tmp_path: Path
) -> None:
    from workbench.db.errors import PermissionDenied

    utterance = pocketsphinx_utterances()[0]
    from workbench_datasets.manifest import ManifestRow

    row = ManifestRow(
        id="u", audio=str(utterance.path), reference="x", duration_s=1.0, source="t", licence="x"
    )
    manifest = read_manifest(write_manifest(tmp_path / "m.jsonl", [row]))
    fake = ModelSpec(name="fake", kind="stt", backend="fake", model="fake")
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        with pytest.raises(PermissionDenied):
            await run_task(
                AsrTask(spec=fake, manifest=manifest),
                folder=RunFolder(tmp_path / "r"),
                sink=DatabaseSink(conn, people["other"].claims),
                progress=False,
            )


async def test_cli_tools_act_as_a_named_user(app_db: str, people: dict[str, Persona]) -> None:
    email = people["researcher"].claims.email
    assert email is not None
    async with await psycopg.AsyncConnection.connect(app_db, autocommit=True) as conn:
        claims = await claims_for_user(conn, email.upper())
        assert claims.sub == str(people["researcher"].id)
        assert claims.role == "authenticated"
        with pytest.raises(LookupError, match="no user with email"):
            await claims_for_user(conn, "nobody@example.org")


async def test_corrections_are_stamped_by_the_database_and_open_to_owners_and_researchers(
    app_db: str, people: dict[str, Persona], tmp_path: Path
) -> None:
    """Who corrected a transcript and when come from the session; others cannot touch it."""
    speaker, researcher, other = people["speaker"], people["researcher"], people["other"]
    async with recorded_as(app_db, speaker) as conn:
        repo = ConversationsRepo(conn)
        conversation = await repo.start(room_name="corrections")
        now = datetime.now(UTC)
        await repo.add_turns(
            [
                TurnDraft(
                    conversation_id=conversation.id,
                    idx=0,
                    role="user",
                    text="wreck a nice beach",
                    started_at=now,
                    ended_at=now,
                )
            ]
        )
        (turn,) = await repo.turns(conversation.id)
    async with session_as(app_db, speaker) as conn:
        mine = await ConversationsRepo(conn).correct_transcript(turn.id, "  recognise speech ")
    assert (mine.reference_text, mine.reference_by) == ("recognise speech", speaker.id)
    assert mine.reference_at is not None
    async with session_as(app_db, researcher) as conn:  # researchers review anyone's turns
        reviewed = await ConversationsRepo(conn).correct_transcript(turn.id, "recognize speech")
    assert reviewed.reference_by == researcher.id
    async with session_as(app_db, other) as conn:
        with pytest.raises(NotFound):
            await ConversationsRepo(conn).correct_transcript(turn.id, "hijacked")
    async with session_as(app_db, speaker) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the stamps are the database's
            await conn.execute(
                "update public.turns set reference_by = %s where id = %s", [other.id, turn.id]
            )
    async with session_as(app_db, speaker) as conn:
        cleared = await ConversationsRepo(conn).correct_transcript(turn.id, "   ")
    assert (cleared.reference_text, cleared.reference_by, cleared.reference_at) == (
        None,
        None,
        None,
    )


def test_live_transcripts_are_scored_only_when_asked_and_then_labelled(tmp_path: Path) -> None:
    rows = [
        ManifestRow(
            id=f"c-{kind}",
            audio=str(u.path),
            reference=u.reference,
            duration_s=1.0,
            source="test",
            licence="test",
            reference_kind=kind,
        )
        for kind, u in zip(("human", "live_transcript"), pocketsphinx_utterances()[:2], strict=True)
    ]
    manifest = read_manifest(write_manifest(tmp_path / "m" / "manifest.jsonl", rows))
    fake = ModelSpec(name="fake-stt", kind="stt", backend="fake", model="fake")
    strict = AsrTask(spec=fake, manifest=manifest)
    assert [r.reference_kind for r in strict.items] == ["human"]
    assert "references" not in strict.spec_snapshot()
    loose = AsrTask(spec=fake, manifest=manifest, include_live_transcripts=True)
    assert len(loose.items) == 2
    assert loose.spec_snapshot()["references"] == "human and live transcripts"
