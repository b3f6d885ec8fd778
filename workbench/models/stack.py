"""A stack: the STT, LLM and TTS specs an agent (or a latency eval) runs together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from workbench.models.base import ModelSpec, SpecError, load_spec


class StackSpec(BaseModel):
    """Three specs under one name; each may be inline or a path relative to the stack file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    stt: ModelSpec
    llm: ModelSpec
    tts: ModelSpec

    def snapshot(self) -> dict[str, Any]:
        """What conversations store as `model_specs`."""
        return {
            "name": self.name,
            "stt": self.stt.snapshot(),
            "llm": self.llm.snapshot(),
            "tts": self.tts.snapshot(),
        }


def load_stack(path: str | Path) -> StackSpec:
    """Read a stack file, resolving spec paths relative to it."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: no such stack file") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a stack file is a mapping with name, stt, llm, tts")
    for kind in ("stt", "llm", "tts"):
        if isinstance(data.get(kind), str):
            data[kind] = load_spec(path.parent / data[kind])
    try:
        return StackSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SpecError(f"{path}: {problems}") from None
