"""The local stack's generated secrets, kept in `.local/secrets.json` (mode 0600, never committed)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from stack.errors import StackError
from stack.private_files import write_private
from workbench.auth.tokens import mint_api_key
from workbench.config import LOCAL_SECRETS_FILE

_REQUIRED = (
    "jwt_secret",
    "anon_key",
    "service_role_key",
    "postgres_password",
    "authenticator_password",
    "auth_admin_password",
    "livekit_api_key",
    "livekit_api_secret",
)


def ensure_local_secrets(local_dir: Path) -> dict[str, str]:
    """Read the local secrets, generating any that are missing; never replaces existing ones."""
    path = local_dir / LOCAL_SECRETS_FILE
    current: dict[str, str] = {}
    if path.exists():
        try:
            current = dict(json.loads(path.read_text()))
        except ValueError as exc:
            raise StackError(
                f"{path} is not valid JSON ({exc}); fix it, or move it aside to generate new secrets "
                "(the database keeps its old passwords until `./dev up` re-applies them)"
            ) from None
    generated = dict(current)
    generated.setdefault("jwt_secret", secrets.token_hex(32))
    generated.setdefault("anon_key", mint_api_key(generated["jwt_secret"], "anon"))
    generated.setdefault("service_role_key", mint_api_key(generated["jwt_secret"], "service_role"))
    # Hex: no character a shell, a URL or an argument parser treats specially.
    generated.setdefault("postgres_password", secrets.token_hex(16))
    # One password per login role: the app's (`authenticator`) and Auth's own
    # (`supabase_auth_admin`); the superuser's is for migrations only.
    generated.setdefault("authenticator_password", secrets.token_hex(16))
    generated.setdefault("auth_admin_password", secrets.token_hex(16))
    generated.setdefault("livekit_api_key", "API" + secrets.token_hex(6))
    generated.setdefault("livekit_api_secret", secrets.token_hex(24))
    generated.setdefault("cookie_secret", secrets.token_hex(32))
    if generated != current:
        write_private(path, json.dumps(generated, indent=2))
    missing = [key for key in _REQUIRED if not generated.get(key)]
    if missing:
        raise StackError(
            f"{path} has empty values for {', '.join(missing)}; delete those keys and rerun"
        )
    return generated
