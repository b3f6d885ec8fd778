"""What a room asks of its agent (prompt, pipeline, model stack): the room's metadata, as JSON.

The web app writes it when it opens a room and reads the stack back when it
dispatches again (dashboards/rooms.py); the agent reads the prompt and the
pipeline (agent/worker.py). One format, one parser.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RoomOptions:
    """Each option unset means the reader's default."""

    prompt: str | None = None
    pipeline: str | None = None
    stack: str | None = None

    def to_metadata(self) -> str:
        """The room metadata carrying the options that are set."""
        return json.dumps({name: value for name, value in asdict(self).items() if value})

    @classmethod
    def from_metadata(cls, metadata: str | None) -> RoomOptions:
        """The options in a room's metadata; none from metadata that is unreadable or not ours."""
        try:
            raw = json.loads(metadata or "{}")
        except ValueError:
            raw = {}
        if not isinstance(raw, dict):
            return cls()
        return cls(
            **{name: str(raw[name]) for name in ("prompt", "pipeline", "stack") if raw.get(name)}
        )
