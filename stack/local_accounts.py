"""The local stack's first accounts (an admin and a researcher), made once per database.

They are created through Supabase Auth's admin API, as any account is, so
GoTrue finds everything it expects (identities, confirmation, hashing); rows
inserted by SQL make it answer "Database error querying schema". Each gets a
generated password, written once to `.local/local-accounts.json` (mode 0600)
and printed by `up`. The database remembers that it made them, so an account a
person deletes or demotes stays deleted or demoted on the next `up`.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import psycopg.sql

from stack.errors import StackError
from stack.private_files import write_private

ACCOUNTS_FILE = "local-accounts.json"


@dataclass(frozen=True)
class LocalAccount:
    """One seeded account. The fixed ids let `supabase/seed.sql` name the admin as author."""

    id: str
    email: str
    display_name: str
    role: str
    password: str = ""


LOCAL_ACCOUNTS = (
    LocalAccount("00000000-0000-4000-a000-000000000001", "admin@workbench.local", "Admin", "admin"),
    LocalAccount(
        "00000000-0000-4000-a000-000000000002",
        "researcher@workbench.local",
        "Researcher",
        "researcher",
    ),
)

_MARKER_DDL = """
create table if not exists supabase_migrations.local_seed (
  name text primary key,
  applied_at timestamptz not null default now()
)
"""


def ensure_local_accounts(
    conn: psycopg.Connection[Any], *, auth_url: str, service_role_key: str, local_dir: Path
) -> list[LocalAccount]:
    """Create the local accounts if this database never had them; the accounts made now (else [])."""
    conn.execute(_MARKER_DDL)
    done = conn.execute(
        "select 1 from supabase_migrations.local_seed where name = 'local-accounts'"
    ).fetchone()
    if done:
        return []
    repair_sql_seeded(conn, [account.id for account in LOCAL_ACCOUNTS])
    made = [
        _create(account, auth_url=auth_url, service_role_key=service_role_key)
        for account in LOCAL_ACCOUNTS
    ]
    for account in made:
        # As the stack's superuser: no request claims, so set_user_role's SQL role
        # check (service_role or an admin) does not apply; the profile row came
        # from the sign-up trigger when GoTrue inserted the user.
        conn.execute(
            "update public.profiles set role = %s::public.app_role where id = %s",
            [account.role, account.id],
        )
    _write_accounts(local_dir / ACCOUNTS_FILE, made)
    conn.execute("insert into supabase_migrations.local_seed (name) values ('local-accounts')")
    return made


# Token columns GoTrue reads as strings: NULL there makes it answer "Database error
# checking email" for the whole address.
_TOKEN_COLUMNS = (
    "confirmation_token",
    "recovery_token",
    "email_change_token_new",
    "email_change",
    "email_change_token_current",
    "phone_change",
    "phone_change_token",
    "reauthentication_token",
)


def repair_sql_seeded(conn: psycopg.Connection[Any], user_ids: list[str]) -> None:
    """Make users an earlier `up` inserted by SQL (the local accounts) readable to GoTrue.

    Clusters made before the accounts went through GoTrue hold them as raw rows
    with NULL tokens; they keep their ids (and everything the users own) and
    get fresh passwords below.
    """
    present = {
        row[0]
        for row in conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'auth' and table_name = 'users'"
        )
    }
    columns = [c for c in _TOKEN_COLUMNS if c in present]
    if not columns:
        return
    assignments = psycopg.sql.SQL(", ").join(
        psycopg.sql.SQL("{0} = coalesce({0}, '')").format(psycopg.sql.Identifier(c))
        for c in columns
    )
    conn.execute(
        psycopg.sql.SQL("update auth.users set {} where id = any(%s)").format(assignments),
        [user_ids],
    )


def _create(account: LocalAccount, *, auth_url: str, service_role_key: str) -> LocalAccount:
    password = secrets.token_urlsafe(12)
    headers = {"Authorization": f"Bearer {service_role_key}", "apikey": service_role_key}
    body = {
        "id": account.id,
        "email": account.email,
        "password": password,
        "email_confirm": True,
        "user_metadata": {"display_name": account.display_name},
    }
    try:
        with httpx.Client(base_url=auth_url, headers=headers, timeout=30) as client:
            response = client.post("/admin/users", json=body)
            if response.status_code == 422 and "email_exists" in response.text:
                # Made by an earlier `up` that stopped before it recorded them:
                # give the account a fresh password, which is printed now.
                response = client.put(f"/admin/users/{account.id}", json={"password": password})
    except httpx.HTTPError as exc:
        raise StackError(
            f"creating the local accounts: Supabase Auth did not answer ({exc})"
        ) from None
    if response.status_code >= 300:
        raise StackError(
            f"creating the local account {account.email} through Supabase Auth failed: "
            f"HTTP {response.status_code} {response.text[:300]}"
        )
    return LocalAccount(**{**asdict(account), "password": password})


def _write_accounts(path: Path, accounts: list[LocalAccount]) -> None:
    write_private(path, json.dumps([asdict(a) for a in accounts], indent=2))
