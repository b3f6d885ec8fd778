"""Who each LiveKit room was opened for (service sessions only)."""

from __future__ import annotations

from uuid import UUID

from workbench.db.errors import translated
from workbench.db.repositories._base import Repo

# A claim older than this whose agent never joined is stale (its job died starting):
# longer than a job process takes to start and load a stack's models under load.
CLAIM_STALE_S = 180.0


class RoomsRepo(Repo):
    """Who each LiveKit room was opened for (service sessions only: `private.rooms`)."""

    async def register(
        self, name: str, owner_id: UUID, *, key_sha256: bytes, stack: str | None = None
    ) -> None:
        """Record that the web app opened room `name` for `owner_id` (before the room exists).

        `key_sha256`: the digest of the room key the owner's token carries
        (workbench.room_options). `stack`: the model stack chosen for it, None for
        the default; the database refuses a choice by an owner who is neither
        researcher nor admin.
        """
        await self._execute(
            "insert into private.rooms (name, owner_id, stack, key_sha256) values (%s, %s, %s, %s)",
            [name, owner_id, stack, key_sha256],
        )

    async def opened_since(self, owner_id: UUID, seconds: float) -> list[str]:
        """Rooms opened for `owner_id` in the last `seconds`, one at a time per owner.

        Takes a per-owner lock until the transaction ends, so two Start clicks
        cannot both pass a limit counted from this list.
        """
        with translated():
            await self.conn.execute(
                "select pg_advisory_xact_lock(hashtext('private.rooms:' || %s::text))", [owner_id]
            )
            cur = await self.conn.execute(
                """select name from private.rooms
                   where owner_id = %s and created_at > now() - make_interval(secs => %s)""",
                [owner_id, seconds],
            )
            return [str(row[0]) for row in await cur.fetchall()]

    async def admission(self, name: str) -> tuple[UUID, bytes | None] | None:
        """Whom room `name` was opened for and its room key's digest; None if no one opened it here."""
        with translated():
            cur = await self.conn.execute(
                "select owner_id, key_sha256 from private.rooms where name = %s", [name]
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return UUID(str(row[0])), (bytes(row[1]) if row[1] is not None else None)

    async def claim(self, name: str, job_id: str) -> bool | None:
        """Claim room `name` for LiveKit job `job_id`: True when this job holds it now, False
        when another job holds a fresh claim, None when the web app did not open the room here."""
        with translated():
            cur = await self.conn.execute(
                """update private.rooms set claimed_by_job = %s, claimed_at = now()
                   where name = %s and (claimed_by_job is null or claimed_by_job = %s
                                        or claimed_at < now() - make_interval(secs => %s))
                   returning 1""",
                [job_id, name, job_id, CLAIM_STALE_S],
            )
            if await cur.fetchone() is not None:
                return True
            cur = await self.conn.execute("select 1 from private.rooms where name = %s", [name])
            return False if await cur.fetchone() is not None else None

    async def claimed(self, name: str) -> bool:
        """Whether a job holds a fresh claim on room `name` (so dispatching it again would
        send a second agent)."""
        with translated():
            cur = await self.conn.execute(
                """select 1 from private.rooms where name = %s and claimed_by_job is not null
                   and claimed_at >= now() - make_interval(secs => %s)""",
                [name, CLAIM_STALE_S],
            )
            return await cur.fetchone() is not None
