"""Agent workers' heartbeats, and which model stacks can serve a conversation now."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from workbench.db.models import LiveStack, WorkerBeat
from workbench.db.repositories._base import Repo


class WorkersRepo(Repo):
    """`public.agent_workers` (written in service sessions) and `public.live_stacks`."""

    async def announce(self, beat: WorkerBeat) -> None:
        """Insert or refresh this worker's row (its heartbeat)."""
        await self._execute(
            """insert into public.agent_workers
                   (id, stack, agent_name, spec, host, state, reason, rooms, max_rooms, memory_mb)
               values (%(id)s, %(stack)s, %(agent_name)s, %(spec)s, %(host)s, %(state)s,
                       %(reason)s, %(rooms)s, %(max_rooms)s, %(memory_mb)s)
               on conflict (id) do update set
                   state = excluded.state, reason = excluded.reason, rooms = excluded.rooms,
                   max_rooms = excluded.max_rooms, memory_mb = excluded.memory_mb,
                   spec = excluded.spec, seen_at = now()""",
            {**beat.model_dump(), "spec": Jsonb(beat.spec)},
        )

    async def withdraw(self, worker_id: str) -> None:
        """Remove this worker's row (it is stopping)."""
        await self._execute("delete from public.agent_workers where id = %s", [worker_id])

    async def live_stacks(self) -> dict[str, LiveStack]:
        """Stacks with a fresh heartbeat, by name (serving or not: `LiveStack.serving`)."""
        rows = await self._all(LiveStack, "select * from public.live_stacks order by stack")
        return {row.stack: row for row in rows}
