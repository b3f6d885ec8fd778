"""Supabase Auth (GoTrue) on 127.0.0.1, email sign-up auto-confirmed locally."""

from __future__ import annotations

import os
from pathlib import Path

from stack.gobuild import SUPABASE_AUTH
from stack.layout import StackLayout
from stack.managed import BinaryService


class AuthService(BinaryService):
    """Registration, login, password reset and JWT issuing; runs its own migrations in `auth`."""

    name = "auth"
    port_setting = "WORKBENCH_AUTH_PORT"
    health_path = "/health"
    binary_spec = SUPABASE_AUTH

    def __init__(
        self,
        layout: StackLayout,
        *,
        port: int,
        postgres_port: int,
        db_password: str,
        jwt_secret: str,
        site_url: str,
        smtp_port: int,
        confirm_email: bool = False,
    ) -> None:
        super().__init__(layout, port=port)
        self._postgres_port = postgres_port
        self._db_password = db_password
        self._jwt_secret = jwt_secret
        self._site_url = site_url
        self._smtp_port = smtp_port
        self._confirm_email = confirm_email

    def command(self, binary: Path) -> list[str]:
        return [str(binary)]

    def environment(self) -> dict[str, str]:
        # Only what GoTrue needs; secrets go through the environment, never argv.
        env = {key: os.environ[key] for key in ("PATH", "HOME", "TZ") if key in os.environ}
        env.update(
            {
                "GOTRUE_API_HOST": "127.0.0.1",
                "PORT": str(self.port),
                "API_EXTERNAL_URL": self.url,
                "GOTRUE_DB_DRIVER": "postgres",
                "GOTRUE_DB_DATABASE_URL": (
                    f"postgres://supabase_auth_admin:{self._db_password}@127.0.0.1:{self._postgres_port}"
                    "/postgres?sslmode=disable&search_path=auth"
                ),
                "GOTRUE_SITE_URL": self._site_url,
                "GOTRUE_URI_ALLOW_LIST": f"{self._site_url}/**",
                "GOTRUE_JWT_SECRET": self._jwt_secret,
                "GOTRUE_JWT_EXP": "3600",
                "GOTRUE_JWT_AUD": "authenticated",
                "GOTRUE_JWT_DEFAULT_GROUP_NAME": "authenticated",
                "GOTRUE_JWT_ADMIN_ROLES": "service_role",
                "GOTRUE_DISABLE_SIGNUP": "false",
                "GOTRUE_EXTERNAL_EMAIL_ENABLED": "true",
                # Local accounts are confirmed at once unless WORKBENCH_AUTH_CONFIRM_EMAIL
                # asks for the confirmation mail (read in the mail catcher).
                "GOTRUE_MAILER_AUTOCONFIRM": "false" if self._confirm_email else "true",
                "GOTRUE_LOG_LEVEL": "info",
                # Mail (confirmation, recovery) goes to the stack's mail catcher.
                "GOTRUE_SMTP_HOST": "127.0.0.1",
                "GOTRUE_SMTP_PORT": str(self._smtp_port),
                "GOTRUE_SMTP_ADMIN_EMAIL": "auth@workbench.local",
                "GOTRUE_SMTP_SENDER_NAME": "Voice Workbench",
                "GOTRUE_MAILER_URLPATHS_RECOVERY": "/verify",
                # Links to our own pages with the token hash (supabase/templates/README.md),
                # fetched from the web app (relative to the site URL) when a mail goes out.
                "GOTRUE_MAILER_TEMPLATES_RECOVERY": "/auth/templates/recovery.html",
                "GOTRUE_MAILER_TEMPLATES_CONFIRMATION": "/auth/templates/confirmation.html",
                "GOTRUE_MAILER_SUBJECTS_RECOVERY": "Reset your Voice Workbench password",
                "GOTRUE_MAILER_SUBJECTS_CONFIRMATION": "Confirm your Voice Workbench account",
                # GoTrue's own per-client limits: every call comes from the web server,
                # which forwards the browser's address in this header (SupabaseAuth).
                "GOTRUE_RATE_LIMIT_HEADER": "X-Forwarded-For",
                "GOTRUE_RATE_LIMIT_EMAIL_SENT": "60",  # mails per hour, all clients
                "GOTRUE_RATE_LIMIT_VERIFY": "30",  # per client per 5 min
                "GOTRUE_RATE_LIMIT_TOKEN_REFRESH": "150",  # per client per 5 min
                "GOTRUE_RATE_LIMIT_OTP": "30",
                "GOTRUE_SECURITY_REFRESH_TOKEN_ROTATION_ENABLED": "true",
            }
        )
        return env
