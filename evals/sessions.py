"""Live sessions as tables: recorded turns and per-turn latency, for notebooks and dashboards.

Reads through a connection in an identity session, so a researcher sees what
RLS lets a researcher see (everyone's conversations), a user only their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from psycopg import AsyncConnection

from workbench.audio import read_audio
from workbench.db.repositories import ConversationsRepo
from workbench.latency_stages import on_side
from workbench.storage import ObjectStore

# Where the agent records each stage: the user turn carries end-of-utterance
# and transcription delays, the agent turn the reply's stages.
USER_STAGES = tuple(stage.field for stage in on_side("user"))
AGENT_STAGES = tuple(stage.field for stage in on_side("agent"))


async def session_turns(conn: AsyncConnection[Any], *, conversations: int = 20) -> pd.DataFrame:
    """Every turn of the newest `conversations` visible conversations, oldest turn first."""
    repo = ConversationsRepo(conn)
    rows: list[dict[str, Any]] = []
    for conversation in await repo.recent(limit=conversations):
        for turn in await repo.turns(conversation.id):
            rows.append({**turn.model_dump(), "owner_id": conversation.owner_id})
    columns = [
        "conversation_id",
        "idx",
        "role",
        "text",
        "started_at",
        "audio_path",
        "owner_id",
        "interrupted",
        *USER_STAGES,
        *AGENT_STAGES,
    ]
    frame = pd.DataFrame(rows, columns=None if rows else columns)
    return frame.sort_values(["started_at", "idx"]).reset_index(drop=True) if rows else frame


def agent_turn_latency(turns: pd.DataFrame) -> pd.DataFrame:
    """One row per agent turn: its stages plus the stages of the user turn it answered."""
    out: list[dict[str, Any]] = []
    for conversation_id, group in turns.groupby("conversation_id", sort=False):
        previous_user: dict[str, Any] | None = None
        for record in group.sort_values("idx").to_dict("records"):
            if record["role"] == "user":
                previous_user = record
                continue
            row = {
                "conversation_id": conversation_id,
                "idx": record["idx"],
                "text": record["text"],
                "interrupted": record["interrupted"],
            }
            for stage in USER_STAGES:
                row[stage] = previous_user.get(stage) if previous_user else None
            for stage in AGENT_STAGES:
                row[stage] = record.get(stage)
            out.append(row)
    frame = pd.DataFrame(
        out, columns=["conversation_id", "idx", "text", "interrupted", *USER_STAGES, *AGENT_STAGES]
    )
    frame.insert(0, "turn", range(1, len(frame) + 1))
    return frame


async def turn_audio(conn: AsyncConnection[Any], store: ObjectStore, audio_path: str) -> np.ndarray:
    """A recorded turn's audio (16 kHz float32), checked against its stored digest."""
    return read_audio(await store.read(conn, bucket="audio", path=audio_path))
