"""Where the stack keeps things: runtime state in `.local/`, slow artefacts in the user cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.config import Settings


@dataclass(frozen=True)
class StackLayout:
    """Folders of one checkout's stack."""

    local_dir: Path
    cache_dir: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> StackLayout:
        """The layout the settings point at."""
        return cls(local_dir=settings.local_dir, cache_dir=settings.cache_dir)

    @property
    def logs_dir(self) -> Path:
        """Service logs: `<service>.log`."""
        return self.local_dir / "logs"

    @property
    def run_dir(self) -> Path:
        """Pidfiles and generated service configuration."""
        return self.local_dir / "run"

    @property
    def storage_dir(self) -> Path:
        """The default object store (a local folder)."""
        return self.local_dir / "storage"
