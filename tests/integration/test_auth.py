"""Supabase Auth (GoTrue) end to end: register, log in, verify the JWT, query under RLS with it.

The real server, always: `up` builds it from its vendored source where the Go
module proxy refuses it, and fails rather than run without it, so nothing here skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthApiError

from stack.auth_server import AuthService
from stack.gobuild import SUPABASE_AUTH, find_source
from stack.layout import StackLayout
from stack.local_accounts import repair_sql_seeded
from stack.mailcatcher import links_in, read_messages
from stack.secrets import ensure_local_secrets
from stack.services import LocalStack
from workbench.auth.client import (
    AuthFailure,
    EmailTaken,
    InvalidCredentials,
    SupabaseAuth,
    TooManyRequests,
)
from workbench.auth.login_guard import LoginGuard, TooManyAttempts
from workbench.auth.tokens import TokenError, verifier_for
from workbench.config import Settings
from workbench.db.connection import rls_session

pytestmark = pytest.mark.integration


async def _mail_to(stack: LocalStack, email: str, kind: str) -> list[EmailMessage]:
    """The messages the mail catcher holds for `email`, waiting up to 15 s for the first."""
    deadline = time.monotonic() + 15
    while not (messages := read_messages(stack.mail.folder, to=email)):
        assert time.monotonic() < deadline, f"no {kind} mail arrived"
        await asyncio.sleep(0.2)
    return messages


@pytest.fixture
def auth_client(stack: LocalStack, settings: Settings) -> SyncGoTrueClient:
    assert settings.supabase_anon_key is not None
    anon_key = settings.supabase_anon_key.get_secret_value()
    client = SyncGoTrueClient(
        url=settings.auth_url,
        headers={"apikey": anon_key, "Authorization": f"Bearer {anon_key}"},
        persist_session=False,
        auto_refresh_token=False,
    )
    return client


def test_health_endpoint_answers(stack: LocalStack, auth_client: SyncGoTrueClient) -> None:
    assert httpx.get(stack.auth.health_url, timeout=5).status_code == 200


async def test_register_login_and_query_under_rls(
    auth_client: SyncGoTrueClient, settings: Settings, admin_dsn: str
) -> None:
    email = f"researcher-{secrets.token_hex(4)}@example.org"
    password = secrets.token_urlsafe(16)
    signed_up = auth_client.sign_up({"email": email, "password": password})
    assert signed_up.user is not None
    assert signed_up.user.email == email

    signed_in = auth_client.sign_in_with_password({"email": email, "password": password})
    assert signed_in.session is not None
    claims = verifier_for(settings).verify(signed_in.session.access_token)
    assert claims.sub == signed_up.user.id
    assert claims.role == "authenticated"

    async with (
        await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn,
        rls_session(conn, claims),
    ):
        cur = await conn.execute("select auth.uid()::text, current_user, auth.email()")
        assert await cur.fetchone() == (signed_up.user.id, "authenticated", email)


def test_wrong_password_is_refused(auth_client: SyncGoTrueClient) -> None:
    email = f"user-{secrets.token_hex(4)}@example.org"
    auth_client.sign_up({"email": email, "password": "a-good-password-1"})
    with pytest.raises(AuthApiError, match="Invalid login credentials"):
        auth_client.sign_in_with_password({"email": email, "password": "wrong-password"})


def test_gotrue_token_tampered_is_refused(
    auth_client: SyncGoTrueClient, settings: Settings
) -> None:
    email = f"user-{secrets.token_hex(4)}@example.org"
    password = secrets.token_urlsafe(16)
    auth_client.sign_up({"email": email, "password": password})
    session = auth_client.sign_in_with_password({"email": email, "password": password}).session
    assert session is not None
    header, payload, signature = session.access_token.split(".")
    with pytest.raises(TokenError, match="signature"):
        verifier_for(settings).verify(f"{header}.{payload}.{signature[:-4]}AAAA")


@pytest.fixture
def supabase_auth(
    auth_client: SyncGoTrueClient, settings: Settings, admin_dsn: str
) -> SupabaseAuth:
    assert settings.supabase_anon_key is not None

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
            yield conn

    return SupabaseAuth(
        auth_url=settings.auth_url,
        anon_key=settings.supabase_anon_key.get_secret_value(),
        verifier=verifier_for(settings),
        guard=LoginGuard(max_pair_failures=3),
        connect=connect,
    )


async def test_password_reset_through_the_captured_mail(
    supabase_auth: SupabaseAuth, stack: LocalStack, settings: Settings
) -> None:
    email = f"forgetful-{secrets.token_hex(4)}@example.org"
    await supabase_auth.sign_up(email, "first-password-1", display_name="Forgetful")
    await supabase_auth.request_password_reset(
        email, redirect_to=f"http://127.0.0.1:{settings.panel_port}/reset"
    )
    messages = await _mail_to(stack, email, "recovery")
    # Our template links to the web app's own page with the token hash (a server
    # never sees GoTrue's default link, whose tokens are in a URL fragment).
    (link,) = links_in(messages[-1])
    assert link.startswith(f"http://127.0.0.1:{settings.panel_port}/reset/complete?token_hash=")
    token_hash = parse_qs(urlsplit(link).query)["token_hash"][0]
    session = await supabase_auth.complete_password_reset(token_hash, "second-password-2")
    assert session.claims.email == email
    with pytest.raises(InvalidCredentials):
        await supabase_auth.sign_in(email, "first-password-1", client_key="test")
    assert (
        await supabase_auth.sign_in(email, "second-password-2", client_key="test")
    ).claims.email == email


async def test_refresh_logout_and_rate_limit(supabase_auth: SupabaseAuth) -> None:
    email = f"cycler-{secrets.token_hex(4)}@example.org"
    await supabase_auth.sign_up(email, "a-good-password-1")
    session = await supabase_auth.sign_in(email, "a-good-password-1", client_key="cycle")
    refreshed = await supabase_auth.refresh(session.refresh_token)
    assert refreshed.user_id == session.user_id
    await supabase_auth.sign_out(refreshed)
    with pytest.raises(AuthFailure):
        await supabase_auth.refresh(refreshed.refresh_token)  # revoked by logout
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            await supabase_auth.sign_in(email, "wrong-password", client_key="cycle")
    with pytest.raises(TooManyAttempts):
        await supabase_auth.sign_in(email, "a-good-password-1", client_key="cycle")
    with pytest.raises(EmailTaken):
        await supabase_auth.sign_up(email, "another-password-1")


def test_every_gotrue_migration_ran_on_top_of_the_bootstrap(admin_dsn: str) -> None:
    """The bootstrap pre-creates GoTrue's base tables (as Supabase's image does); GoTrue adds the rest.

    All 69 migrations of v2.189.0 must be recorded as applied, besides the seven
    legacy versions the bootstrap records for the tables it made.
    """
    with psycopg.connect(admin_dsn) as conn:
        applied = {row[0] for row in conn.execute("select version from auth.schema_migrations")}
    legacy = {
        "20171026211738", "20171026211808", "20171026211834", "20180103212743",
        "20180108183307", "20180119214651", "20180125194653",
    }  # fmt: skip
    assert SUPABASE_AUTH.source is not None
    archive = find_source(SUPABASE_AUTH.source)
    if archive is not None and archive.is_file():
        with tarfile.open(archive) as tar:
            shipped = {
                Path(name).name.split("_", 1)[0]
                for name in tar.getnames()
                if "/migrations/" in name and name.endswith(".sql")
            }
        assert len(shipped) == 69
        assert shipped <= applied, f"not applied: {sorted(shipped - applied)}"
        assert applied - shipped == legacy
    else:  # no archive beside this checkout: the count still tells
        assert len(applied - legacy) >= 69


async def test_gotrue_rate_limits_each_browser_apart(supabase_auth: SupabaseAuth) -> None:
    """GoTrue's limit on /verify (30 per 5 min) counts the address the web server forwards."""
    busy, other = (f"198.51.100.{secrets.randbelow(250)}-{secrets.token_hex(3)}" for _ in range(2))
    refused_as_invalid = 0
    with pytest.raises(TooManyRequests):  # within 40 bad reset links from one address
        for _ in range(40):
            with pytest.raises(AuthFailure) as bad:
                await supabase_auth.complete_password_reset("bogus", "pw-123456", client_key=busy)
            if isinstance(bad.value, TooManyRequests):
                raise bad.value
            refused_as_invalid += 1
    assert refused_as_invalid >= 30  # the configured burst went through first
    with pytest.raises(AuthFailure) as elsewhere:
        await supabase_auth.complete_password_reset("not-a-token", "pw-123456", client_key=other)
    assert not isinstance(elsewhere.value, TooManyRequests)


@pytest.fixture
def confirming_auth(stack: LocalStack, settings: Settings, tmp_path: Path) -> Iterator[AuthService]:
    """A second Supabase Auth on the stack's database that requires the confirmation mail."""
    secrets_ = ensure_local_secrets(stack.layout.local_dir)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    service = AuthService(
        StackLayout(local_dir=tmp_path, cache_dir=stack.layout.cache_dir),
        port=port,
        postgres_port=settings.postgres_port,
        db_password=secrets_["auth_admin_password"],
        jwt_secret=secrets_["jwt_secret"],
        site_url=f"http://127.0.0.1:{settings.panel_port}",  # serves the mail templates
        smtp_port=settings.mail_port,
        confirm_email=True,
    )
    (tmp_path / "logs").mkdir()
    (tmp_path / "run").mkdir()
    service.prepare()
    service.start()
    try:
        yield service
    finally:
        service.stop()


async def test_email_confirmation_when_required(
    confirming_auth: AuthService, stack: LocalStack, settings: Settings
) -> None:
    assert settings.supabase_anon_key is not None
    auth = SupabaseAuth(
        auth_url=confirming_auth.url,
        anon_key=settings.supabase_anon_key.get_secret_value(),
        verifier=verifier_for(settings),
    )
    email = f"careful-{secrets.token_hex(4)}@example.org"
    signed_up = await auth.sign_up(email, "a-good-password-1")
    assert signed_up.needs_confirmation
    # Before confirming, the right password is answered exactly as a wrong one: a guess
    # never learns that it was right.
    answers = []
    for password in ("a-good-password-1", "a-wrong-password-1"):
        with pytest.raises(InvalidCredentials) as refused:
            await auth.sign_in(email, password, client_key="careful")
        answers.append(str(refused.value))
    assert answers[0] == answers[1] == "wrong email or password"
    messages = await _mail_to(stack, email, "confirmation")
    (link,) = links_in(messages[-1])
    assert link.startswith(f"http://127.0.0.1:{settings.panel_port}/confirm?token_hash=")
    # The link's page (the stack's web app; same database) asks for a click: opening
    # it, as a mail scanner would, must not use the token up.
    async with httpx.AsyncClient() as browser:
        page = await browser.get(link)
        assert page.status_code == 200
        assert "Confirm my account" in page.text
        confirmed = await browser.post(
            link, data={"_xsrf": browser.cookies["_xsrf"]}, follow_redirects=False
        )
        assert confirmed.status_code == 302, confirmed.text
        assert confirmed.headers["location"] == "/"
        assert "vwb_session" in confirmed.cookies
    assert (await auth.sign_in(email, "a-good-password-1", client_key="careful")).user_id == (
        signed_up.user_id
    )


def test_accounts_an_old_seed_inserted_by_sql_are_repaired_for_gotrue(
    settings: Settings, admin_dsn: str
) -> None:
    """Clusters from before the accounts went through GoTrue hold raw rows GoTrue cannot read."""
    user_id, email = str(uuid.uuid4()), f"legacy-{secrets.token_hex(4)}@example.org"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        # What supabase/seed.sql used to insert (minus confirmed_at, generated since).
        conn.execute(
            """insert into auth.users (instance_id, id, aud, role, email, encrypted_password,
                   email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
               values ('00000000-0000-0000-0000-000000000000', %s, 'authenticated', 'authenticated', %s,
                   extensions.crypt('old-password', extensions.gen_salt('bf', 10)), now(),
                   '{"provider": "email", "providers": ["email"]}', '{}', now(), now())""",
            [user_id, email],
        )
    assert settings.supabase_service_role_key is not None
    key = settings.supabase_service_role_key.get_secret_value()
    admin = httpx.Client(
        base_url=settings.auth_url, headers={"Authorization": f"Bearer {key}", "apikey": key}
    )
    broken = admin.put(f"/admin/users/{user_id}", json={"password": "new-password-1"})
    assert broken.status_code == 500  # "Database error ...": the NULL token columns
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        repair_sql_seeded(conn, [user_id])
    assert admin.put(f"/admin/users/{user_id}", json={"password": "new-password-1"}).is_success
    signed_in = admin.post(
        "/token",
        params={"grant_type": "password"},
        json={"email": email, "password": "new-password-1"},
    )
    assert signed_in.is_success, signed_in.text


async def test_changing_the_password_needs_the_current_one_and_ends_other_sessions(
    supabase_auth: SupabaseAuth,
) -> None:
    email = f"mover-{secrets.token_hex(4)}@example.org"
    await supabase_auth.sign_up(email, "first-password-1")
    here = await supabase_auth.sign_in(email, "first-password-1", client_key="laptop")
    elsewhere = await supabase_auth.sign_in(email, "first-password-1", client_key="lab-pc")
    with pytest.raises(InvalidCredentials, match="current password is wrong"):
        await supabase_auth.change_password(
            here, "not-it-1", "second-password-2", client_key="laptop"
        )
    await supabase_auth.change_password(
        here, "first-password-1", "second-password-2", client_key="laptop"
    )
    with pytest.raises(AuthFailure):
        await supabase_auth.refresh(elsewhere.refresh_token)  # the other machine is signed out
    assert (await supabase_auth.refresh(here.refresh_token)).user_id == here.user_id
    with pytest.raises(InvalidCredentials):
        await supabase_auth.sign_in(email, "first-password-1", client_key="laptop")


async def test_a_password_reset_ends_every_earlier_session(
    supabase_auth: SupabaseAuth, stack: LocalStack, settings: Settings
) -> None:
    email = f"stolen-{secrets.token_hex(4)}@example.org"
    await supabase_auth.sign_up(email, "leaked-password-1")
    thief = await supabase_auth.sign_in(email, "leaked-password-1", client_key="thief")
    await supabase_auth.request_password_reset(email, redirect_to=f"{settings.public_url}/reset")
    messages = await _mail_to(stack, email, "recovery")
    (link,) = links_in(messages[-1])
    token_hash = parse_qs(urlsplit(link).query)["token_hash"][0]
    await supabase_auth.complete_password_reset(token_hash, "fresh-password-2")
    with pytest.raises(AuthFailure):
        await supabase_auth.refresh(thief.refresh_token)
