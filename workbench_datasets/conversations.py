"""Recorded conversations from Supabase as datasets: user audio for ASR, histories for prompt evals.

Runs on a connection already inside an identity session (`rls_session` for a
researcher, or `service_session`), so the database decides which conversations
are visible. Audio is copied out of the object store next to the manifest: the
dataset is a snapshot that stays valid when conversations are later deleted.

A user turn's reference is its human correction (`reference_text`) when one
exists, else the live transcript, marked `reference_kind="live_transcript"`
(scoring ASR against its own output measures nothing, so `asr` evals can
filter on the kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import soundfile as sf
from psycopg import AsyncConnection

from workbench.audio import read_audio
from workbench.db.errors import NotFound
from workbench.db.models import Turn
from workbench.db.repositories import ConversationsRepo
from workbench.storage import ObjectStore
from workbench_datasets.dialogues import Dialogue, DialogueMessage
from workbench_datasets.manifest import ManifestRow

LICENCE = "workbench recording (consent under the deployment's terms)"


@dataclass(frozen=True)
class ConversationExport:
    """What an export produced."""

    rows: list[ManifestRow]
    dialogues: list[Dialogue]
    missing_audio: list[str]  # turn ids whose audio object was gone or unreadable


async def export_conversations(
    conn: AsyncConnection[Any],
    store: ObjectStore,
    out_dir: Path,
    *,
    limit: int = 100,
    human_references_only: bool = False,
) -> ConversationExport:
    """The newest `limit` visible conversations as manifest rows and dialogues."""
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    repo = ConversationsRepo(conn)
    rows: list[ManifestRow] = []
    dialogues: list[Dialogue] = []
    missing: list[str] = []
    for conversation in await repo.recent(limit=limit):
        turns = await repo.turns(conversation.id)
        dialogues += _dialogues(conversation.id, turns)
        for turn in turns:
            if turn.role != "user" or not turn.audio_path:
                continue
            if human_references_only and not turn.reference_text:
                continue
            row = await _audio_row(conn, store, audio_dir, conversation.owner_id, turn)
            if row is None:
                missing.append(str(turn.id))
            else:
                rows.append(row)
    return ConversationExport(rows=rows, dialogues=dialogues, missing_audio=missing)


async def _audio_row(
    conn: AsyncConnection[Any], store: ObjectStore, audio_dir: Path, owner_id: UUID, turn: Turn
) -> ManifestRow | None:
    assert turn.audio_path is not None
    try:
        samples = read_audio(await store.read(conn, bucket="audio", path=turn.audio_path))
    except (NotFound, ValueError):
        return None
    if samples.size == 0:
        return None
    name = f"{turn.conversation_id}-{turn.idx:04d}"
    path = audio_dir / f"{name}.wav"
    sf.write(str(path), samples, 16_000, subtype="PCM_16")
    reference = (turn.reference_text or turn.text).strip()
    if not reference:
        return None
    return ManifestRow(
        id=name,
        audio=str(path.relative_to(audio_dir.parent)),
        reference=reference,
        duration_s=samples.size / 16_000,
        speaker=str(owner_id),
        source=f"conversation:{turn.conversation_id}",
        licence=LICENCE,
        reference_kind="human" if turn.reference_text else "live_transcript",
    )


def _dialogues(conversation_id: UUID, turns: list[Turn]) -> list[Dialogue]:
    # Every agent turn that answers a user turn yields one dialogue: the history up
    # to that user turn, and the agent's live reply as the reference.
    out: list[Dialogue] = []
    history: list[DialogueMessage] = []
    for turn in turns:
        text = (turn.reference_text or turn.text).strip()
        if not text:
            continue
        if turn.role == "agent" and history and history[-1].role == "user":
            out.append(
                Dialogue(
                    id=f"{conversation_id}-{turn.idx:04d}",
                    messages=tuple(history),
                    reference_reply=text,
                    source=f"conversation:{conversation_id}",
                )
            )
        history.append(
            DialogueMessage(role="user" if turn.role == "user" else "assistant", content=text)
        )
    return out
