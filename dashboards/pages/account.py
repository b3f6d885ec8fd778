"""Profile (display name, avatar, password) and Settings (preferences checked against the schema).

Settings are validated by `UserSettings` here and by the same schema in SQL,
so a bad value is refused with the field named, and nothing is half-saved.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from uuid import UUID

import panel as pn
import param
from psycopg import AsyncConnection
from pydantic import ValidationError

from dashboards.files import file_url
from workbench.config import REPO_ROOT
from workbench.db.models import UiSettings, UserSettings
from workbench.db.repositories import ProfilesRepo
from workbench.storage import ObjectStore

AVATAR_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
STACKS = sorted(p.stem for p in (REPO_ROOT / "configs" / "stacks").glob("*.yaml"))
NOT_SET = "(default)"


class AccountStore(param.Parameterized):
    """The caller's profile and settings."""

    display_name = param.String(default="")
    avatar_path = param.String(default="")
    role = param.String(default="user")
    stack = param.Selector(default=NOT_SET, objects=[NOT_SET, *STACKS])
    voice = param.String(default="")
    language = param.String(default="")
    theme = param.Selector(default=NOT_SET, objects=[NOT_SET, "light", "dark", "system"])
    show_latency = param.Boolean(default=True)
    show_transcript = param.Boolean(default=True)
    message = param.String(default="")
    error = param.String(default="")

    async def load(self, conn: AsyncConnection[Any]) -> None:
        """Read the caller's profile."""
        profile = await ProfilesRepo(conn).mine()
        settings = UserSettings.model_validate(profile.settings)
        ui = settings.ui or UiSettings()
        self.param.update(
            display_name=profile.display_name,
            avatar_path=profile.avatar_path or "",
            role=profile.role,
            stack=settings.stack if settings.stack in STACKS else NOT_SET,
            voice=settings.voice or "",
            language=settings.language or "",
            theme=ui.theme or NOT_SET,
            show_latency=ui.show_latency if ui.show_latency is not None else True,
            show_transcript=ui.show_transcript if ui.show_transcript is not None else True,
        )

    def settings(self) -> UserSettings:
        """The form as validated settings (raises ValueError naming the field)."""
        try:
            return UserSettings(
                stack=None if self.stack == NOT_SET else self.stack,
                voice=self.voice.strip() or None,
                language=self.language.strip() or None,
                ui=UiSettings(
                    theme=None if self.theme == NOT_SET else self.theme,
                    show_latency=self.show_latency,
                    show_transcript=self.show_transcript,
                ),
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(problems) from None

    async def save_settings(self, conn: AsyncConnection[Any]) -> None:
        """Store the settings."""
        await ProfilesRepo(conn).update_mine(settings=self.settings())

    async def save_name(self, conn: AsyncConnection[Any]) -> None:
        """Store the display name."""
        name = self.display_name.strip()
        if not name:
            raise ValueError("the display name cannot be empty")
        await ProfilesRepo(conn).update_mine(display_name=name)

    async def upload_avatar(
        self,
        conn: AsyncConnection[Any],
        store: ObjectStore,
        owner: UUID,
        data: bytes,
        mime_type: str,
    ) -> None:
        """Store an avatar image (type and size checked by the store's limits) and point the profile at it."""
        if mime_type not in AVATAR_TYPES:
            raise ValueError(f"an avatar is PNG, JPEG or WebP, not {mime_type or 'unknown'}")
        stored = await store.put(
            conn,
            bucket="avatars",
            owner_id=owner,
            name=f"avatar.{AVATAR_TYPES[mime_type]}",
            data=data,
            content_type=mime_type,
        )
        await ProfilesRepo(conn).update_mine(avatar_path=stored.path)
        self.avatar_path = stored.path


def profile_view(store: AccountStore, act: Any) -> pn.viewable.Viewable:
    """Display name, avatar and password; `act(name, **kwargs)` runs an action as the user."""
    name = pn.widgets.TextInput.from_param(store.param.display_name, name="Display name", width=300)
    save_name = pn.widgets.Button(name="Save name", button_type="primary")
    save_name.on_click(lambda _e: pn.state.execute(partial(act, "name")))
    avatar = pn.widgets.FileInput(accept=",".join(AVATAR_TYPES), name="Avatar")
    upload = pn.widgets.Button(name="Upload avatar")
    upload.on_click(
        lambda _e: pn.state.execute(
            partial(act, "avatar", data=avatar.value, mime_type=avatar.mime_type)
        )
    )
    current = pn.widgets.PasswordInput(name="Current password", width=300)
    password = pn.widgets.PasswordInput(name="New password", width=300)
    change = pn.widgets.Button(name="Change password")
    change.on_click(
        lambda _e: pn.state.execute(
            partial(act, "password", current=current.value, password=password.value)
        )
    )

    @pn.depends(store.param.avatar_path)
    def picture(path: str) -> pn.viewable.Viewable:
        if not path:
            return pn.pane.Markdown("*No avatar yet.*")
        return pn.pane.HTML(
            f'<img alt="avatar" src="{file_url("avatars", path)}" width="96" height="96">'
        )

    return pn.Column(
        _feedback(store),
        pn.pane.Markdown(f"Role: **{store.role}**"),
        pn.Row(name, save_name),
        picture,
        pn.Row(avatar, upload),
        pn.Row(current, password, change),
        sizing_mode="stretch_width",
    )


def settings_view(store: AccountStore, act: Any) -> pn.viewable.Viewable:
    """Preferences; saved only when they validate."""
    save = pn.widgets.Button(name="Save settings", button_type="primary")
    save.on_click(lambda _e: pn.state.execute(partial(act, "settings")))
    return pn.Column(
        _feedback(store),
        pn.widgets.Select.from_param(store.param.stack, name="Model stack", width=250),
        pn.widgets.TextInput.from_param(store.param.voice, name="Voice", width=250),
        pn.widgets.TextInput.from_param(
            store.param.language, name="Language (e.g. en or en-US)", width=250
        ),
        pn.widgets.Select.from_param(store.param.theme, name="Theme", width=250),
        pn.widgets.Checkbox.from_param(store.param.show_latency, name="Show latency"),
        pn.widgets.Checkbox.from_param(store.param.show_transcript, name="Show transcript"),
        save,
        sizing_mode="stretch_width",
    )


def _feedback(store: AccountStore) -> Any:
    @pn.depends(store.param.message, store.param.error)
    def view(message: str, error: str) -> pn.viewable.Viewable:
        if error:
            return pn.pane.Alert(error, alert_type="danger")
        return pn.pane.Alert(message, alert_type="success") if message else pn.Spacer(height=0)

    return view
