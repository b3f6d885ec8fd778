"""Backend keys to lazily imported classes, with clear errors for missing extras and unknown keys."""

from __future__ import annotations

import importlib
from pathlib import Path

from workbench.models.base import Model
from workbench.models.spec import ModelSpec, load_spec

# (kind, backend) -> (module, class, pip extra that provides its dependencies)
_BACKENDS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("stt", "faster-whisper"): (
        "workbench.models.faster_whisper_stt",
        "FasterWhisperSTT",
        "models",
    ),
    ("stt", "transformers"): (
        "workbench.models.transformers_whisper",
        "TransformersWhisperSTT",
        "models",
    ),
    ("llm", "transformers"): (
        "workbench.models.transformers_chat",
        "TransformersChatModel",
        "models",
    ),
    ("llm", "llama-cpp"): ("workbench.models.llama_cpp_chat", "LlamaCppChatModel", "models"),
    ("tts", "piper"): ("workbench.models.piper_tts", "PiperTTS", "models"),
    ("tts", "transformers"): (
        "workbench.models.transformers_vits",
        "TransformersVitsTTS",
        "models",
    ),
    ("tts", "espeak-ng"): ("workbench.models.espeak_tts", "EspeakTTS", ""),
    ("tts", "flite"): ("workbench.models.flite_tts", "FliteTTS", ""),
    ("embed", "sentence-transformers"): (
        "workbench.models.sentence_embeddings",
        "SentenceTransformerEmbedder",
        "models",
    ),
    ("stt", "fake"): ("workbench.models.fakes", "FakeSpeechToText", ""),
    ("llm", "fake"): ("workbench.models.fakes", "FakeChatModel", ""),
    ("tts", "fake"): ("workbench.models.fakes", "FakeTextToSpeech", ""),
}


class UnknownBackend(LookupError):
    """No backend of that kind has that key."""


class ModelBackendUnavailable(ImportError):
    """The backend's Python dependencies are not installed."""


def backends(kind: str) -> list[str]:
    """Backend keys available for a kind."""
    return sorted(backend for k, backend in _BACKENDS if k == kind)


def create(spec: ModelSpec) -> Model:
    """The backend object for `spec`, not yet loaded (call `.load()`, e.g. at prewarm)."""
    try:
        module_name, class_name, extra = _BACKENDS[(spec.kind, spec.backend)]
    except KeyError:
        raise UnknownBackend(
            f"spec {spec.name!r}: no {spec.kind} backend {spec.backend!r}; known: {', '.join(backends(spec.kind))}"
        ) from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install 'voice-workbench[{extra}]'" if extra else "reinstall voice-workbench"
        raise ModelBackendUnavailable(
            f"the {spec.kind} backend {spec.backend!r} needs {exc.name or 'a missing package'}: {hint}"
        ) from exc
    model: Model = getattr(module, class_name)(spec)
    return model


def load_model(spec: ModelSpec | str | Path) -> Model:
    """Create and load a model from a spec or a spec file."""
    if not isinstance(spec, ModelSpec):
        spec = load_spec(spec)
    model = create(spec)
    model.load()
    return model
