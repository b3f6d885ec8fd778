"""A user's export requests."""

from __future__ import annotations

from uuid import UUID

from workbench.db.models import (
    Export,
)
from workbench.db.repositories._base import Repo

_EXPORT = "id, owner_id, conversation_id, format, status, object_path, error, created_at"


class ExportsRepo(Repo):
    """Conversation export requests."""

    async def request(self, *, format: str, conversation_id: UUID | None = None) -> Export:
        """Ask for an export of one conversation, or of all the caller's conversations."""
        return await self._one(
            Export,
            f"insert into public.exports (format, conversation_id) values (%s, %s) returning {_EXPORT}",
            [format, conversation_id],
        )

    async def complete(
        self, export_id: UUID, *, object_path: str | None, error: str | None = None
    ) -> Export:
        """Mark an export ready (with its object) or failed (service)."""
        return await self._one(
            Export,
            f"""update public.exports set status = case when %(error)s::text is null then 'ready' else 'failed' end,
                  object_path = %(path)s, error = %(error)s, completed_at = now()
                where id = %(id)s returning {_EXPORT}""",
            {"id": export_id, "path": object_path, "error": error},
        )

    async def mine(self) -> list[Export]:
        """The caller's exports, newest first (an admin, who may read everyone's, too)."""
        return await self._all(
            Export,
            f"select {_EXPORT} from public.exports where owner_id = auth.uid() order by created_at desc",
        )
