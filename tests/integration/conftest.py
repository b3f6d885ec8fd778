"""Fixtures over the real local stack: `./dev test` brings it up; these make sure of it."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jwt
import pytest

from stack.services import LocalStack
from tests.support.databases import scratch_database
from workbench.auth.tokens import AccessClaims, verifier_for
from workbench.config import Settings, get_settings
from workbench.db.connection import admin_database_url
from workbench.voice_client import VoiceClient


@pytest.fixture(scope="session")
def stack() -> LocalStack:
    """The checkout's local stack, up (idempotent: a running stack is left as is)."""
    get_settings.cache_clear()
    local = LocalStack(get_settings())
    local.up()
    return local


@pytest.fixture(scope="session")
def settings(stack: LocalStack) -> Settings:
    """Settings read after `up`, so the generated local secrets are in them."""
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture(scope="session")
def admin_dsn(settings: Settings) -> str:
    """Superuser connection string: test set-up only, never a user-facing path."""
    return admin_database_url(settings)


@pytest.fixture
def scratch_db(admin_dsn: str) -> Iterator[str]:
    """A fresh database in the stack's cluster with Supabase's role model only; dropped afterwards."""
    with scratch_database(admin_dsn, with_migrations=False) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def app_db(admin_dsn: str) -> Iterator[str]:
    """A fresh database with the role model and every app migration, shared by one test module."""
    with scratch_database(admin_dsn, with_migrations=True) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def jwt_secret(settings: Settings) -> str:
    """The local stack's JWT secret (what GoTrue signs with)."""
    assert settings.supabase_jwt_secret is not None
    return settings.supabase_jwt_secret.get_secret_value()


@pytest.fixture
def sign_user_claims(settings: Settings):  # type: ignore[no-untyped-def]
    """Make verified `authenticated` claims for a new user id, signed with the local JWT secret.

    The token goes through the same verifier a request would; GoTrue-issued
    tokens are covered by test_auth.py when Supabase Auth runs.
    """
    verifier = verifier_for(settings)
    assert settings.supabase_jwt_secret is not None
    secret = settings.supabase_jwt_secret.get_secret_value()

    def make(**extra: Any) -> AccessClaims:
        now = int(time.time())
        payload = {
            "sub": str(uuid.uuid4()),
            "role": "authenticated",
            "aud": "authenticated",
            "iat": now,
            "exp": now + 300,
            **extra,
        }
        return verifier.verify(jwt.encode(payload, secret, algorithm="HS256"))

    return make


@pytest.fixture
async def clients() -> AsyncIterator[list[VoiceClient]]:
    """The test's room clients (append them), closed afterwards."""
    opened: list[VoiceClient] = []
    yield opened
    for voice in opened:
        await voice.close()
