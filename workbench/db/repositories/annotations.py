"""Annotations: researchers' tags, 1-5 ratings and notes on conversations and their turns.

    await AnnotationsRepo(conn).save(conversation_id, turn_id=None, rating=2, note="...", tags=["off-topic"])

The database decides who may do what (supabase/migrations/20261208020000_annotations.sql):
researchers read every annotation and write their own (one per conversation or
turn, edited in place), admins manage the tag vocabulary and may remove any.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from workbench.db.errors import InvalidInput, translated
from workbench.db.repositories._base import Repo


class Tag(BaseModel):
    """One word of the shared vocabulary."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    description: str


class Annotation(BaseModel):
    """One researcher's word on a conversation (turn_id None) or one of its turns."""

    model_config = ConfigDict(frozen=True)

    id: int
    conversation_id: UUID
    turn_id: int | None
    turn_idx: int | None  # the turn's position in its conversation
    author_id: UUID
    rating: int | None
    note: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime


_ANNOTATION = """
    select a.id, a.conversation_id, a.turn_id, t.idx as turn_idx, a.author_id, a.rating, a.note,
           coalesce(array_agg(g.name order by g.name) filter (where g.name is not null), '{}')
             as tags,
           a.created_at, a.updated_at
    from public.annotations a
    left join public.turns t on t.id = a.turn_id
    left join public.annotation_labels l on l.annotation_id = a.id
    left join public.annotation_tags g on g.id = l.tag_id
"""


class AnnotationsRepo(Repo):
    async def tags(self) -> list[Tag]:
        """The vocabulary, by name."""
        return await self._all(
            Tag, "select id, name, description from public.annotation_tags order by name"
        )

    async def add_tag(self, name: str, description: str = "") -> Tag:
        """A new tag (admins only)."""
        return await self._one(
            Tag,
            """insert into public.annotation_tags (name, description) values (%s, %s)
               returning id, name, description""",
            [name.strip().lower(), description.strip()],
        )

    async def of_conversation(self, conversation_id: UUID) -> list[Annotation]:
        """Every annotation on a conversation and its turns: the conversation's first, then by turn."""
        return await self._all(
            Annotation,
            f"""{_ANNOTATION} where a.conversation_id = %s
                group by a.id, t.idx order by t.idx nulls first, a.created_at""",
            [conversation_id],
        )

    async def save(
        self,
        conversation_id: UUID,
        *,
        turn_id: int | None,
        rating: int | None,
        note: str,
        tags: Sequence[str],
    ) -> Annotation:
        """The caller's annotation of the conversation (or its turn), made or replaced whole.

        Raises InvalidInput naming any tag not in the vocabulary; nothing is stored then.
        """
        wanted = sorted({t.strip().lower() for t in tags if t.strip()})
        with translated():
            async with self.conn.transaction():
                known = {t.name: t.id for t in await self.tags()}
                unknown = [t for t in wanted if t not in known]
                if unknown:
                    raise InvalidInput(f"not in the tag vocabulary: {', '.join(unknown)}")
                cur = await self.conn.execute(
                    """insert into public.annotations (conversation_id, turn_id, rating, note)
                       values (%s, %s, %s, %s)
                       on conflict (author_id, conversation_id, turn_id)
                       do update set rating = excluded.rating, note = excluded.note
                       returning id""",
                    [conversation_id, turn_id, rating, note.strip()],
                )
                row = await cur.fetchone()
                assert row is not None
                await self.conn.execute(
                    "delete from public.annotation_labels where annotation_id = %s", [row[0]]
                )
                for name in wanted:
                    await self.conn.execute(
                        "insert into public.annotation_labels (annotation_id, tag_id) values (%s, %s)",
                        [row[0], known[name]],
                    )
        return await self._one(
            Annotation, f"{_ANNOTATION} where a.id = %s group by a.id, t.idx", [row[0]]
        )

    async def remove(self, annotation_id: int) -> bool:
        """Delete an annotation (its author's, or any for an admin); False if none was removed."""
        return (
            await self._execute("delete from public.annotations where id = %s", [annotation_id])
            == 1
        )
