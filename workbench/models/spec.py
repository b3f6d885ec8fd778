"""Model specs: which model runs where, read from YAML with errors that name the file and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

Kind = Literal["stt", "llm", "tts", "embed"]


class SpecError(ValueError):
    """A model spec file is missing, not YAML, or does not fit the schema."""


class ModelSpec(BaseModel):
    """Which model runs where: the unit of "swap the model"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    kind: Kind
    backend: str
    model: str = Field(
        min_length=1, description="hub id, local path, or package:<module>/<path inside it>"
    )
    revision: str | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "float16", "bfloat16", "int8"] = "auto"
    params: dict[str, Any] = Field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready copy, stored with conversations and eval runs."""
        return self.model_dump(mode="json")


M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path, what: str) -> Any:
    """The YAML document in `path`; errors name the file (`what`: "spec", "stack")."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: no such {what} file") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({exc})") from None


def validated(model: type[M], data: Any, path: Path) -> M:
    """`data` as `model`; errors name the file and each field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in exc.errors()
        )
        raise SpecError(f"{path}: {problems}") from None


def load_spec(path: str | Path) -> ModelSpec:
    """Read a ModelSpec from YAML; errors name the file and the field."""
    path = Path(path)
    return validated(ModelSpec, read_yaml(path, "spec"), path)
