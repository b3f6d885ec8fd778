"""A stack: the STT, LLM and TTS specs an agent (or a latency eval) runs together."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict

from workbench.config import REPO_ROOT
from workbench.models.base import ChatModel, SpeechToText, TextToSpeech
from workbench.models.registry import create
from workbench.models.spec import ModelSpec, SpecError, load_spec, read_yaml, validated

# The stack files shipped with the workbench; a stack's name is its file's stem.
STACKS_DIR = REPO_ROOT / "configs" / "stacks"


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
    data = read_yaml(path, "stack")
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a stack file is a mapping with name, stt, llm, tts")
    for kind in ("stt", "llm", "tts"):
        if isinstance(data.get(kind), str):
            data[kind] = load_spec(path.parent / data[kind])
    return validated(StackSpec, data, path)


class StackModels(NamedTuple):
    """A stack's three models, each of its kind."""

    stt: SpeechToText
    llm: ChatModel
    tts: TextToSpeech


def create_stack_models(stack: StackSpec) -> StackModels:
    """The stack's models, made but not loaded; SpecError for a spec of the wrong kind."""
    stt, llm, tts = create(stack.stt), create(stack.llm), create(stack.tts)
    for role, model, kind in (
        ("stt", stt, SpeechToText),
        ("llm", llm, ChatModel),
        ("tts", tts, TextToSpeech),
    ):
        if not isinstance(model, kind):
            raise SpecError(
                f"stack {stack.name!r}: its {role} spec makes a {type(model).__name__}, "
                f"not a {kind.__name__}"
            )
    return StackModels(stt, llm, tts)  # type: ignore[arg-type]  # kinds checked above


def load_stack_models(stack: StackSpec) -> StackModels:
    """The stack's models, each loaded (model files read, warmed up)."""
    models = create_stack_models(stack)
    for model in models:
        model.load()
    return models


def stack_file(name: str) -> Path:
    """The file of the stack called `name` (configs/stacks/<name>.yaml); SpecError if none."""
    path = STACKS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(known_stacks()) or "none"
        raise SpecError(f"no stack called {name!r} in {STACKS_DIR} (known: {known})")
    return path


def known_stacks() -> list[str]:
    """Names of the stacks in configs/stacks/, sorted."""
    return sorted(path.stem for path in STACKS_DIR.glob("*.yaml"))
