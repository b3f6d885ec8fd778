"""Conversation exports: the caller's turns as JSON, CSV or Parquet, written to the object store.

Everything the user sees is read under their RLS identity; only marking the
export row complete is service work (users may request exports, not forge
their status). A failure is recorded on the export row, never half a file.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any, Literal
from uuid import UUID

import pandas as pd
from psycopg import AsyncConnection

from workbench.auth.tokens import AccessClaims
from workbench.db.connection import rls_session, service_session
from workbench.db.errors import LimitReached
from workbench.db.models import Export
from workbench.db.repositories import ConversationsRepo, ExportsRepo
from workbench.latency_stages import FIELDS as LATENCY_FIELDS
from workbench.storage import ObjectStore

Format = Literal["json", "csv", "parquet"]
CONTENT_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}
COLUMNS = [
    "conversation_id",
    "idx",
    "role",
    "text",
    "reference_text",
    "started_at",
    "ended_at",
    *LATENCY_FIELDS,
    "interrupted",
    "false_interruption",
    "audio_path",
]


def serialise(rows: list[dict[str, Any]], fmt: Format) -> bytes:
    """Turn rows as bytes of the format (columns fixed, timestamps ISO 8601 UTC)."""
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["conversation_id"] = frame["conversation_id"].astype(str)
    if fmt == "json":
        records = json.loads(frame.to_json(orient="records", date_format="iso"))
        return json.dumps({"turns": records}, indent=1).encode()
    if fmt == "csv":
        text: str = frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
        return text.encode()
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


async def export_conversations(
    conn: AsyncConnection[Any],
    store: ObjectStore,
    claims: AccessClaims,
    *,
    fmt: Format,
    conversation_id: UUID | None = None,
    max_turns: int | None = None,
) -> Export:
    """Export one of the caller's conversations (or all of them); returns the finished export row.

    Bounded, as the export is built in memory: the database allows a few exports an
    hour (`public.export_limits`; LimitReached past them, before anything is made),
    and one export holds at most `max_turns` turns (that function's, unless given;
    LimitReached, recorded on the export row, past them).
    """
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"export format must be one of {', '.join(CONTENT_TYPES)}")
    assert claims.sub is not None
    owner = UUID(claims.sub)
    async with rls_session(conn, claims):
        export = await ExportsRepo(conn).request(format=fmt, conversation_id=conversation_id)
    error: str | None = None
    path: str | None = None
    try:
        async with rls_session(conn, claims):
            repo = ConversationsRepo(conn)
            ids = (
                [conversation_id]
                if conversation_id
                else [c.id for c in await repo.recent(limit=10_000, owner_id=owner)]
            )
            if max_turns is None:
                cur = await conn.execute("select max_turns from public.export_limits()")
                max_turns = int((await cur.fetchone() or [0])[0])
            turns = await repo.count_turns(ids)
            if turns > max_turns:
                raise LimitReached(
                    f"{turns} turns is more than one export holds ({max_turns}): "
                    "export one conversation at a time"
                )
            rows = [t.model_dump() for cid in ids for t in await repo.turns(cid)]
            # Serialising thousands of turns (pandas, Parquet) takes seconds: off the
            # event loop, which serves every open page of the web server.
            data = await asyncio.to_thread(serialise, rows, fmt)
            stored = await store.put(
                conn,
                bucket="exports",
                owner_id=owner,
                name=f"{export.id}.{fmt}",
                data=data,
                content_type=CONTENT_TYPES[fmt],
            )
        path = stored.path
    except Exception as exc:  # recorded on the row for the user to see, then re-raised
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        async with service_session(conn, acting_for=owner):
            export = await ExportsRepo(conn).complete(export.id, object_path=path, error=error)
    return export
