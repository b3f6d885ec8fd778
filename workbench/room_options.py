"""What a room asks of its agent (prompt, pipeline, model stack): the room's metadata, as JSON;
and the room key that admits its owner.

The web app writes the metadata when it opens a room and reads the stack back when
it dispatches again (workbench/rooms.py); the agent reads the prompt and the
pipeline (agent/conversation.py). One format, one parser.

The room key is a random secret per room: the web app records its digest with the
room's owner and puts the key in the owner's join token as a participant
attribute; the agent records the participant only if the key it presents matches.
Minting a token with the owner's identity (anyone with the LiveKit key pair can)
is not enough to be recorded as them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

# The participant attribute that carries the room key.
ROOM_KEY_ATTRIBUTE = "workbench.room_key"


def new_room_key() -> str:
    """A fresh random room key (URL-safe text, 256 bits)."""
    return secrets.token_urlsafe(32)


def room_key_digest(key: str) -> bytes:
    """What the database keeps of a room key (its SHA-256): never the key itself."""
    return hashlib.sha256(key.encode()).digest()


def room_key_matches(presented: str | None, digest: bytes | None) -> bool:
    """Whether a participant's presented key is the room's (constant-time; False without either)."""
    if not presented or digest is None:
        return False
    return hmac.compare_digest(room_key_digest(presented), digest)


@dataclass(frozen=True)
class RoomOptions:
    """Each option unset means the reader's default.

    `prompt_version` pins a version of `prompt` (drafts included) instead of the
    active one or an experiment's arm: for simulations of a draft before it is
    activated. The agent honours it only for a researcher's or admin's room (the
    database checks the owner's role: `PromptsRepo.pinned`).
    """

    prompt: str | None = None
    pipeline: str | None = None
    stack: str | None = None
    prompt_version: int | None = None
    # Values for the prompt's {{variables}}, set on the Conversation page; the agent
    # honours them for a researcher's or admin's room only, like `prompt_version`.
    variables: dict[str, str] = field(default_factory=dict)

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
        version = raw.get("prompt_version")
        try:
            variables = valid_variables(raw.get("variables") or {})
        except (ValueError, AttributeError, TypeError):
            variables = {}  # not ours: none
        return cls(
            **{name: str(raw[name]) for name in ("prompt", "pipeline", "stack") if raw.get(name)},
            prompt_version=version if type(version) is int and version > 0 else None,  # not a bool
            variables=variables,
        )


# A variable's name and value as the database takes them (prompt_versions.variables,
# private.check_prompt_values).
_VARIABLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,39}")
MAX_VARIABLE_VALUE = 500
MAX_VARIABLES = 32


def valid_variables(values: dict[Any, Any]) -> dict[str, str]:
    """`values` as variable values, or ValueError naming the first that is not one."""
    if len(values) > MAX_VARIABLES:
        raise ValueError(f"at most {MAX_VARIABLES} prompt variables")
    for name, value in values.items():
        if not isinstance(name, str) or not _VARIABLE_NAME.fullmatch(name):
            raise ValueError(f"not a variable name: {name!r} (lower-case letters, digits, _)")
        if not isinstance(value, str) or len(value) > MAX_VARIABLE_VALUE:
            raise ValueError(
                f"the value of {name} is text of at most {MAX_VARIABLE_VALUE} characters"
            )
    return dict(values)


def parse_variables(text: str) -> dict[str, str]:
    """`name=value` lines (as typed in a form) as variable values; ValueError says which line is wrong."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sign, value = line.partition("=")
        if not sign:
            raise ValueError(f"line {number}: write name=value, e.g. tone=formal")
        values[name.strip()] = value.strip()
    return valid_variables(values)
