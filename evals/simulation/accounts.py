"""The accounts simulated callers call as: real users of Supabase Auth that can never sign in.

Each concurrent caller uses an account of its own (a user holds at most
`max_rooms_per_user` live rooms). They are made through Supabase Auth's admin
API like any account, without a password and banned for a century, so neither
a password, a magic link nor a recovery mail can open a session for them; their
role is researcher, which the database requires to choose a stack other than
the default and which keeps them out of the agent slots held for staff.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
from psycopg import AsyncConnection

from workbench.config import Settings
from workbench.db.connection import service_session

DOMAIN = "simulation.workbench.local"
BANNED_FOR = "876000h"  # a hundred years


def account_email(slot: int) -> str:
    """The address of the simulation account for concurrent caller `slot`."""
    return f"caller-{slot}@{DOMAIN}"


async def simulation_accounts(
    settings: Settings, conn: AsyncConnection[Any], count: int
) -> list[UUID]:
    """The ids of `count` simulation accounts, creating those that do not exist yet."""
    ids = []
    for slot in range(1, count + 1):
        email = account_email(slot)
        user_id = await _existing(conn, email) or await _create(settings, email, slot)
        async with service_session(conn):
            await conn.execute(
                "select public.set_user_role(%s, 'researcher'::public.app_role)", [user_id]
            )
            # Its conversations are simulated traffic: Analytics keeps them apart from people's.
            await conn.execute(
                "update public.profiles set simulated = true where id = %s and not simulated",
                [user_id],
            )
        ids.append(user_id)
    return ids


async def _existing(conn: AsyncConnection[Any], email: str) -> UUID | None:
    async with service_session(conn):
        cur = await conn.execute("select id from private.user_by_email(%s)", [email])
        row = await cur.fetchone()
    return UUID(str(row[0])) if row else None


async def _create(settings: Settings, email: str, slot: int) -> UUID:
    key = settings.supabase_service_role_key
    if key is None:
        raise ValueError(
            "simulation accounts are made with Supabase Auth's admin API: "
            "set SUPABASE_SERVICE_ROLE_KEY (./dev up does locally)"
        )
    secret = key.get_secret_value()
    body = {
        "email": email,
        "email_confirm": True,
        "ban_duration": BANNED_FOR,
        "user_metadata": {"display_name": f"Simulated caller {slot}"},
    }
    headers = {"Authorization": f"Bearer {secret}", "apikey": secret}
    async with httpx.AsyncClient(base_url=settings.auth_url, headers=headers, timeout=30) as http:
        response = await http.post("/admin/users", json=body)
    if response.status_code >= 300:
        raise RuntimeError(
            f"Supabase Auth refused to create {email}: {response.status_code} {response.text[:200]}"
        )
    return UUID(response.json()["id"])
