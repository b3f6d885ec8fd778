"""Users for database tests, created the way GoTrue's admin API creates them (a row in auth.users).

Their access tokens are signed with the stack's JWT secret and go through the
same verifier a request does, so policies see exactly the claims GoTrue issues.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import jwt
import psycopg

from workbench.auth.tokens import AccessClaims, TokenVerifier, mint_api_key
from workbench.db.connection import rls_session, service_session


@dataclass(frozen=True)
class Persona:
    """A test user and its verified claims (anon has no id)."""

    name: str
    id: uuid.UUID | None
    claims: AccessClaims


def create_user(
    conn: psycopg.Connection[Any],
    *,
    name: str,
    role: str,
    jwt_secret: str,
    display_name: str | None = None,
) -> Persona:
    """Insert an auth user (the sign-up trigger makes the profile), give it `role`, sign its token."""
    user_id = uuid.uuid4()
    email = f"{name}-{secrets.token_hex(3)}@example.org"
    meta = psycopg.types.json.Jsonb({"display_name": display_name} if display_name else {})
    conn.execute(
        """insert into auth.users (instance_id, id, aud, role, email, raw_user_meta_data, created_at, updated_at)
           values ('00000000-0000-0000-0000-000000000000', %s, 'authenticated', 'authenticated', %s, %s, now(), now())""",
        [user_id, email, meta],
    )
    if role != "user":
        # As the service: set_user_role trusts the session's database role, not claims.
        conn.execute("set role service_role")
        conn.execute("select public.set_user_role(%s, %s::public.app_role)", [user_id, role])
        conn.execute("reset role")
    token = user_token(jwt_secret, user_id=user_id, email=email)
    return Persona(name, user_id, TokenVerifier(jwt_secret=jwt_secret).verify(token))


def user_token(jwt_secret: str, *, user_id: uuid.UUID, email: str, ttl_s: int = 3600) -> str:
    """An access token as GoTrue issues it, signed with the stack's JWT secret."""
    now = int(time.time())
    return jwt.encode(
        {
            "sub": str(user_id),
            "email": email,
            "role": "authenticated",
            "aud": "authenticated",
            "iat": now,
            "exp": now + ttl_s,
        },
        jwt_secret,
        algorithm="HS256",
    )


def anon_persona(jwt_secret: str) -> Persona:
    """The anon API key's claims."""
    return Persona(
        "anon",
        None,
        TokenVerifier(jwt_secret=jwt_secret).verify(
            mint_api_key(jwt_secret, "anon"), audience=None
        ),
    )


@asynccontextmanager
async def session_as(dsn: str, persona: Persona) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection inside `persona`'s RLS session (one transaction)."""
    async with (
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn,
        rls_session(conn, persona.claims),
    ):
        yield conn


@asynccontextmanager
async def recorded_as(dsn: str, persona: Persona) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection acting for `persona` as the agent's recorder does (a service session):
    users may not insert conversations or turns themselves."""
    assert persona.id is not None
    async with (
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn,
        service_session(conn, acting_for=persona.id),
    ):
        yield conn


async def query_as(
    dsn: str, persona: Persona, query: str, params: Any = ()
) -> list[tuple[Any, ...]]:
    """Run one statement in `persona`'s RLS session; its rows (none for a statement without)."""
    async with session_as(dsn, persona) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else []
