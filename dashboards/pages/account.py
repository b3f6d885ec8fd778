"""Profile (display name, avatar, password) and Settings (preferences checked against the schema).

Settings are validated by `UserSettings` here and by the same schema in SQL,
so a bad value is refused with the field named, and nothing is half-saved.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import Any

import panel as pn
import param
from pydantic import ValidationError

from dashboards.components.actions import run_on_click
from dashboards.context import web_context
from dashboards.files import file_url
from dashboards.session import PageSession, page_client, session_cookie
from workbench.auth.client import AuthFailure, AuthSession
from workbench.db.errors import DataError
from workbench.db.models import APP_ROLES, UiSettings, UserSettings, ranks_at_least
from workbench.db.repositories import ProfilesRepo
from workbench.models import tts_voices
from workbench.models.stack import known_stacks, load_stack, stack_file
from workbench.storage import open_store

AVATAR_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
STACKS = known_stacks()
# The voices users may choose: those of stacks that speak several (labelled with the stack).
VOICES = {
    f"{voice} ({stack})": voice
    for stack in STACKS
    if len(voices := tts_voices(load_stack(stack_file(stack)).tts)) > 1
    for voice in voices
}
NOT_SET = "(default)"


class AccountPage(pn.viewable.Viewer):
    """The caller's profile and settings, and the actions on them (Profile and Settings show parts)."""

    display_name = param.String(default="")
    avatar_path = param.String(default="")
    role = param.Selector(default="user", objects=list(APP_ROLES))
    stack = param.Selector(default=NOT_SET, objects=[NOT_SET, *STACKS])
    voice = param.Selector(default=NOT_SET, objects={NOT_SET: NOT_SET, **VOICES})
    language = param.String(default="")
    theme = param.Selector(default=NOT_SET, objects=[NOT_SET, "light", "dark", "system"])
    show_latency = param.Boolean(default=True)
    show_transcript = param.Boolean(default=True)
    message = param.String(default="")
    error = param.String(default="")

    def __init__(self, session: PageSession, **params: Any) -> None:
        super().__init__(**params)
        self._session = session

    async def load(self) -> None:
        """Read the caller's profile."""
        async with self._session.as_user() as conn:
            profile = await ProfilesRepo(conn).mine()
        settings = UserSettings.model_validate(profile.settings)
        ui = settings.ui or UiSettings()
        self.param.update(
            display_name=profile.display_name,
            avatar_path=profile.avatar_path or "",
            role=profile.role,
            stack=settings.stack if settings.stack in STACKS else NOT_SET,
            voice=settings.voice if settings.voice in VOICES.values() else NOT_SET,
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
                voice=None if self.voice == NOT_SET else self.voice,
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

    async def _act(self, action: Callable[[], Awaitable[str]]) -> None:
        """Run an action; its outcome, or why it was refused, shows on the page."""
        self.param.update(message="", error="")
        try:
            self.message = await action()
        except (ValueError, DataError, AuthFailure) as exc:
            self.error = str(exc)

    async def save_settings(self) -> None:
        """Store the settings (validated here and in SQL)."""

        async def save() -> str:
            settings = self.settings()
            async with self._session.as_user() as conn:
                await ProfilesRepo(conn).update_mine(settings=settings)
            return "Saved."

        await self._act(save)

    async def save_name(self) -> None:
        """Store the display name."""

        async def save() -> str:
            name = self.display_name.strip()
            if not name:
                raise ValueError("the display name cannot be empty")
            async with self._session.as_user() as conn:
                await ProfilesRepo(conn).update_mine(display_name=name)
            return "Saved."

        await self._act(save)

    async def upload_avatar(self, data: bytes | None, mime_type: str | None) -> None:
        """Store an avatar image (type and size checked by the store's limits) and point the profile at it."""

        async def upload() -> str:
            if not data:
                raise ValueError("choose an image file first")
            if mime_type not in AVATAR_TYPES:
                raise ValueError(f"an avatar is PNG, JPEG or WebP, not {mime_type or 'unknown'}")
            async with self._session.as_user() as conn:
                stored = await open_store(web_context().settings).put(
                    conn,
                    bucket="avatars",
                    owner_id=self._session.user_id,
                    name=f"avatar.{AVATAR_TYPES[mime_type]}",
                    data=data,
                    content_type=mime_type,
                )
                await ProfilesRepo(conn).update_mine(avatar_path=stored.path)
            self.avatar_path = stored.path
            return "Saved."

        await self._act(upload)

    async def change_password(self, current: str, password: str) -> None:
        """Change the password (the current one is checked) and sign the other sessions out."""

        async def change() -> str:
            context = web_context()
            cookie = session_cookie()
            async with context.connection() as conn:
                tokens = await context.sessions.tokens(conn, cookie)
            if tokens is None:
                raise AuthFailure("your session has ended: sign in again")
            await context.auth.change_password(
                AuthSession(tokens[0], tokens[1], self._session.claims),
                current,
                password,
                client_key=page_client(),
            )
            async with context.connection() as conn:
                await context.sessions.end_others(conn, self._session.user_id, keep=cookie)
            return "Password changed. Your other sessions have been signed out."

        await self._act(change)


class ProfilePage(AccountPage):
    """Display name, avatar and password."""

    def __panel__(self) -> pn.viewable.Viewable:
        return profile_view(self)


class SettingsPage(AccountPage):
    """Preferences, saved only when they validate."""

    def __panel__(self) -> pn.viewable.Viewable:
        return settings_view(self)


def profile_view(page: AccountPage) -> pn.viewable.Viewable:
    """Display name, avatar and password, wired to the page's actions."""
    name = pn.widgets.TextInput.from_param(page.param.display_name, name="Display name", width=300)
    save_name = pn.widgets.Button(name="Save name", button_type="primary")
    run_on_click(save_name, page.save_name)
    avatar = pn.widgets.FileInput(accept=",".join(AVATAR_TYPES), name="Avatar")
    upload = pn.widgets.Button(name="Upload avatar")
    run_on_click(upload, lambda: page.upload_avatar(avatar.value, avatar.mime_type))
    current = pn.widgets.PasswordInput(name="Current password", width=300)
    password = pn.widgets.PasswordInput(name="New password", width=300)
    change = pn.widgets.Button(name="Change password")
    run_on_click(change, lambda: page.change_password(current.value, password.value))

    @pn.depends(page.param.avatar_path)
    def picture(path: str) -> pn.viewable.Viewable:
        if not path:
            return pn.pane.Markdown("*No avatar yet.*")
        return pn.pane.HTML(
            f'<img alt="avatar" src="{html.escape(file_url("avatars", path))}" width="96" height="96">'
        )

    return pn.Column(
        _feedback(page),
        pn.pane.Markdown(f"Role: **{page.role}**"),
        pn.FlexBox(name, save_name),
        picture,
        pn.FlexBox(avatar, upload),
        pn.FlexBox(current, password, change),
        sizing_mode="stretch_width",
    )


def settings_view(page: AccountPage) -> pn.viewable.Viewable:
    """Preferences, wired to the page's save action."""
    save = pn.widgets.Button(name="Save settings", button_type="primary")
    run_on_click(save, page.save_settings)
    return pn.Column(
        _feedback(page),
        # The stack the Conversation page starts with; only researchers and admins choose.
        pn.widgets.Select.from_param(
            page.param.stack,
            name="Model stack to start with",
            width=250,
            visible=ranks_at_least(page.role, "researcher"),
        ),
        # Spoken by the stacks that have several voices; others keep their one.
        pn.widgets.Select.from_param(page.param.voice, name="Voice", width=250),
        pn.widgets.TextInput.from_param(
            page.param.language, name="Language (e.g. en or en-US)", width=250
        ),
        pn.widgets.Select.from_param(page.param.theme, name="Theme", width=250),
        pn.widgets.Checkbox.from_param(page.param.show_latency, name="Show latency"),
        pn.widgets.Checkbox.from_param(page.param.show_transcript, name="Show transcript"),
        save,
        sizing_mode="stretch_width",
    )


def _feedback(page: AccountPage) -> Any:
    @pn.depends(page.param.message, page.param.error)
    def view(message: str, error: str) -> pn.viewable.Viewable:
        if error:
            return pn.pane.Alert(error, alert_type="danger")
        return pn.pane.Alert(message, alert_type="success") if message else pn.Spacer(height=0)

    return view
