"""The base of every repository: typed rows from SQL, errors translated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from psycopg import AsyncConnection
from psycopg.rows import class_row
from pydantic import BaseModel

from workbench.db.errors import NotFound, translated

M = TypeVar("M", bound=BaseModel)
Conn = AsyncConnection[Any]


class Repo:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def _one(
        self, model: type[M], query: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> M:
        with translated():
            async with self.conn.cursor(row_factory=class_row(model)) as cur:
                await cur.execute(query, params)
                row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no {model.__name__} matches (or it is not visible to this user)")
        return row

    async def _all(
        self, model: type[M], query: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[M]:
        with translated():
            async with self.conn.cursor(row_factory=class_row(model)) as cur:
                await cur.execute(query, params)
                return await cur.fetchall()

    async def _execute(self, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        with translated():
            cur = await self.conn.execute(query, params)
            return cur.rowcount
