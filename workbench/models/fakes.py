"""Honest fakes for unit tests: the shapes and timings a real backend has, never what a user runs.

- FakeSpeechToText returns `params.transcript` (or "") after sleeping
  `params.rtf` x the audio's duration, like a model of that speed.
- FakeChatModel streams `params.reply` word by word, `params.ms_per_token` apart,
  and counts a token per word.
- FakeTextToSpeech renders each sentence as a tone of 60 ms per character.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from workbench.audio import SPEECH_RATE_HZ, to_int16
from workbench.models.base import (
    ChatMessage,
    ChatModel,
    GenerationParams,
    SpeechToText,
    TextToSpeech,
)


class FakeSpeechToText(SpeechToText):
    """Transcribes every clip as `params.transcript`."""

    def _load(self) -> None:
        self._text = str(self.spec.params.get("transcript", ""))
        self._rtf = float(self.spec.params.get("rtf", 0.1))

    def _transcribe_batch(
        self, clips: list[np.ndarray], language: str | None
    ) -> list[tuple[str, str | None]]:
        time.sleep(self._rtf * sum(c.size for c in clips) / SPEECH_RATE_HZ)
        return [(self._text if c.size else "", language or "en") for c in clips]


class FakeChatModel(ChatModel):
    """Replies `params.reply`, one word per token."""

    def _load(self) -> None:
        self._reply = str(self.spec.params.get("reply", "Hello there."))
        self._delay_s = float(self.spec.params.get("ms_per_token", 5)) / 1000

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _option_logprobs(self, messages: list[ChatMessage], options: list[str]) -> list[float]:
        # Options the scripted reply starts with are near certain; the rest share the remainder.
        return [0.0 if self._reply.strip().startswith(o) else -5.0 for o in options]

    def _generate(
        self,
        messages: list[ChatMessage],
        params: GenerationParams,
        emit: Callable[[str], None],
        should_stop: Callable[[], bool],
    ) -> None:
        for i, word in enumerate(self._reply.split()[: params.max_new_tokens]):
            if should_stop():
                return
            time.sleep(self._delay_s)
            emit(word if i == 0 else " " + word)


class FakeTextToSpeech(TextToSpeech):
    """A 220 Hz tone, 60 ms per character."""

    @property
    def sample_rate_hz(self) -> int:
        return 22_050

    def _load(self) -> None:
        pass

    def _synthesize(self, sentence: str) -> np.ndarray:
        t = np.arange(int(0.06 * len(sentence) * self.sample_rate_hz)) / self.sample_rate_hz
        return to_int16(0.3 * np.sin(2 * np.pi * 220 * t))
