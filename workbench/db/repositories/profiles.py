"""The caller's profile, and roles (changed through SQL that checks them)."""

from __future__ import annotations

from uuid import UUID

from psycopg.types.json import Jsonb

from workbench.db.errors import translated
from workbench.db.models import (
    AppRole,
    Profile,
    UserSettings,
)
from workbench.db.repositories._base import Repo

_PROFILE = "id, display_name, avatar_path, role::text as role, settings, created_at, updated_at"


class ProfilesRepo(Repo):
    """Profiles and roles."""

    async def mine(self) -> Profile:
        """The caller's profile."""
        return await self._one(
            Profile, f"select {_PROFILE} from public.profiles where id = auth.uid()"
        )

    async def roles_held(self) -> set[AppRole]:
        """Every role the caller has at least (admin > researcher > user), as `has_role` decides in SQL."""
        with translated():
            cur = await self.conn.execute(
                "select r::text from unnest(enum_range(null::public.app_role)) r where public.has_role(r)"
            )
            return {row[0] for row in await cur.fetchall()}

    async def is_researcher(self) -> bool:
        """The caller holds a researcher's powers (researchers and admins)."""
        return "researcher" in await self.roles_held()

    async def get(self, user_id: UUID) -> Profile:
        """A profile the caller may see (their own; any, for admins)."""
        return await self._one(
            Profile, f"select {_PROFILE} from public.profiles where id = %s", [user_id]
        )

    async def list_all(self) -> list[Profile]:
        """Every profile the caller may see, oldest first."""
        return await self._all(
            Profile, f"select {_PROFILE} from public.profiles order by created_at"
        )

    async def update_mine(
        self,
        *,
        display_name: str | None = None,
        avatar_path: str | None = None,
        settings: UserSettings | None = None,
    ) -> Profile:
        """Change the caller's display name, avatar path or settings."""
        return await self._one(
            Profile,
            f"""update public.profiles set
                  display_name = coalesce(%(display_name)s, display_name),
                  avatar_path = coalesce(%(avatar_path)s, avatar_path),
                  settings = coalesce(%(settings)s, settings)
                where id = auth.uid() returning {_PROFILE}""",
            {
                "display_name": display_name,
                "avatar_path": avatar_path,
                "settings": Jsonb(settings.to_json()) if settings is not None else None,
            },
        )

    async def set_role(self, user_id: UUID, role: AppRole) -> None:
        """Change a user's role (admins only; checked in SQL by set_user_role)."""
        await self._execute("select public.set_user_role(%s, %s::public.app_role)", [user_id, role])
