"""Buttons that run a page action: a spinner on the button while it runs, one run at a time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import panel as pn


def run_on_click(button: pn.widgets.Button, action: Callable[[], Awaitable[object]]) -> None:
    """Run `action()` on each click; the button shows it is busy and ignores clicks until done.

    `action` is called at click time, so the form values it reads are the current ones.
    """

    async def run(_event: Any) -> None:
        if button.loading:  # a second click while the first is still running
            return
        button.loading = True
        try:
            await action()
        finally:
            button.loading = False

    button.on_click(run)
