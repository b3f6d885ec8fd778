"""The one model interface (SpeechToText, ChatModel, TextToSpeech, TextEmbedder), specs and the backend registry.

`create(spec)` builds a backend from a `ModelSpec`; swapping a model means
pointing at a different spec, in the agent, the evals and the notebooks alike.
"""

from workbench.models.base import (
    AudioChunk,
    ChatMessage,
    ChatModel,
    GenerationParams,
    SpeechToText,
    TextEmbedder,
    TextToSpeech,
    Transcript,
    UnknownVoice,
    tts_voices,
)
from workbench.models.registry import ModelBackendUnavailable, UnknownBackend, create, load_model
from workbench.models.spec import ModelSpec, load_spec

__all__ = [
    "AudioChunk",
    "ChatMessage",
    "ChatModel",
    "GenerationParams",
    "ModelBackendUnavailable",
    "ModelSpec",
    "SpeechToText",
    "TextEmbedder",
    "TextToSpeech",
    "Transcript",
    "UnknownBackend",
    "UnknownVoice",
    "create",
    "load_model",
    "load_spec",
    "tts_voices",
]
