"""Dialogue sets for prompt-quality evals: histories ending in a user turn, with a reference reply.

JSONL, one dialogue per line: `id`, `messages` (user/assistant turns, oldest
first, the last one from the user), optional `reference_reply` (what the agent
answered live, or a human-written answer), `source`. The system prompt is not
part of a dialogue: the eval supplies the prompt version under test.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workbench_datasets.manifest import RowProblem


class DialogueMessage(BaseModel):
    """One message of a recorded history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant"]
    content: str = Field(min_length=1)


class Dialogue(BaseModel):
    """A history to answer, and the reply it got (if known)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=300)
    messages: tuple[DialogueMessage, ...] = Field(min_length=1)
    reference_reply: str | None = None
    source: str = Field(min_length=1)

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, messages: tuple[DialogueMessage, ...]) -> tuple[DialogueMessage, ...]:
        if messages[-1].role != "user":
            raise ValueError("the last message must be the user's (the turn to answer)")
        return messages


def read_dialogues(path: str | Path) -> tuple[str, list[Dialogue], list[RowProblem]]:
    """(dataset id, dialogues, problems): bad lines are reported, not raised."""
    path = Path(path)
    dialogues: list[Dialogue] = []
    problems: list[RowProblem] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            dialogues.append(Dialogue.model_validate_json(line))
        except ValidationError as exc:
            reason = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in exc.errors()
            )
            problems.append(RowProblem(number, None, reason))
    return dialogue_set_id(path.stem, dialogues), dialogues, problems


def dialogue_set_id(name: str, dialogues: Sequence[Dialogue]) -> str:
    """`<name>@<sha12>` of the dialogues' content."""
    digest = hashlib.sha256("\n".join(d.model_dump_json() for d in dialogues).encode())
    return f"{name}@{digest.hexdigest()[:12]}"


def write_dialogues(path: Path, dialogues: Iterable[Dialogue]) -> Path:
    """Write dialogues as JSONL (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(d.model_dump(mode="json")) + "\n" for d in dialogues))
    tmp.replace(path)
    return path
