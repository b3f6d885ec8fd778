"""Whisper through CTranslate2 (faster-whisper): int8 on CPU, float16 on CUDA."""

from __future__ import annotations

import os
import re
import zlib
from collections import Counter
from typing import Any

import numpy as np

from workbench.audio import SPEECH_RATE_HZ
from workbench.models.base import SpeechToText
from workbench.models.sources import resolve_source

# A short-window result this repetitive (gzip ratio, Whisper's own threshold) is a
# decoding loop, not speech: the clip is transcribed again on the full window.
MAX_COMPRESSION_RATIO = 2.4
# Whisper's own threshold for an unsure decode (`log_prob_threshold`); where the full
# window would retry at a higher temperature, the short one hands over to it.
MIN_AVG_LOGPROB = -1.0
# Conversational speech is 3-5 tokens a second, fast speech with numbers up to ~7; a
# decode past this many is looping.
MAX_TOKENS_PER_S = 10

# A short-window decode that ends by saying its last words again is re-reading audio it
# already transcribed (seen on voices the window was not chosen on: "... What should I
# check first? What should I check first?"); that many words repeated end to end is
# taken for such a re-read.
MIN_REPEATED_WORDS = 3

_WORD = re.compile(r"[a-z0-9']+")


def ends_in_a_repeat(text: str, min_words: int = MIN_REPEATED_WORDS) -> bool:
    """True when the last `min_words` words of `text` already occurred, in order, earlier in it.

    (A longer repeated ending always ends in such a run, so checking `min_words` is enough.)
    """
    words = _WORD.findall(text.lower())
    tail, earlier = words[-min_words:], words[:-min_words]
    return len(words) >= 2 * min_words and any(
        earlier[i : i + min_words] == tail for i in range(len(earlier) - min_words + 1)
    )


class FasterWhisperSTT(SpeechToText):
    """Any CTranslate2 Whisper checkpoint (a folder, or a hub id such as `Systran/faster-whisper-small`).

    params: `beam_size` (1), `language`, `cpu_threads` (all cores), `no_speech_threshold`
    (0.6: segments Whisper thinks are not speech are dropped, against hallucinations on
    silence), `batch_size` (> 1 uses the batched pipeline, for replays on GPU),
    `short_window_s` (see `_transcribe_short`; unset: every clip gets Whisper's 30 s window).
    """

    def _load(self) -> None:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        compute_type = (
            self.spec.dtype
            if self.spec.dtype != "auto"
            else ("int8" if self.device == "cpu" else "float16")
        )
        self._params: dict[str, Any] = dict(self.spec.params)
        self._model = WhisperModel(
            resolve_source(self.spec.model),
            device=self.device,
            compute_type=compute_type,
            cpu_threads=int(self._params.get("cpu_threads", os.cpu_count() or 1)),
            revision=self.spec.revision,
        )
        batch_size = int(self._params.get("batch_size", 1))
        self._batched = BatchedInferencePipeline(self._model) if batch_size > 1 else None
        window = self._params.get("short_window_s")
        self._short_window_s = float(window) if window else None
        # How clips were decoded: "short", "fallback" (short result refused), "full".
        self.decodes: Counter[str] = Counter()
        self._transcribe_batch([np.zeros(16_000, dtype=np.float32)], "en")  # warm-up
        self.decodes.clear()

    def _transcribe_one(self, clip: np.ndarray, language: str | None) -> tuple[str, str | None]:
        if clip.size == 0:
            return "", language
        language = language or self._params.get("language")
        if self._short_window_s and clip.size <= 0.75 * self._short_window_s * SPEECH_RATE_HZ:
            short = self._transcribe_short(clip, language, self._short_window_s)
            if short is not None:
                self.decodes["short"] += 1
                return short
            self.decodes["fallback"] += 1
        else:
            self.decodes["full"] += 1
        options = {
            "language": language,
            "beam_size": int(self._params.get("beam_size", 1)),
            "condition_on_previous_text": False,
            "without_timestamps": True,
        }
        if self._batched is not None:
            segments, info = self._batched.transcribe(
                clip, batch_size=int(self._params["batch_size"]), **options
            )
        else:
            segments, info = self._model.transcribe(clip, **options)
        threshold = float(self._params.get("no_speech_threshold", 0.6))
        text = "".join(s.text for s in segments if s.no_speech_prob < threshold)
        return text, info.language

    def _transcribe_short(
        self, clip: np.ndarray, language: str | None, window_s: float
    ) -> tuple[str, str | None] | None:
        """One greedy decode over a `window_s` encoder window instead of Whisper's 30 s.

        The encoder's cost grows faster than its input: on 2 CPU cores tiny.en encodes
        10 s in 0.04 s and 30 s in 0.32 s, so a voice turn's transcript is ready ~0.3 s
        sooner (bench/README.md). Whisper was trained on 30 s windows; at 10 s with at
        least a quarter of it padding, speech transcribes about as well (WER of both
        windows on voices it was not chosen on: bench/stt_windows.py), but it can loop
        or read its speech twice, so a result that repeats itself
        (`MAX_COMPRESSION_RATIO`, `MAX_TOKENS_PER_S`, `ends_in_a_repeat`) is None and
        the caller falls back to the full window.
        """
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_ctranslate2_storage

        extractor = self._model.feature_extractor
        frames = round(window_s * SPEECH_RATE_HZ / extractor.hop_length)
        features = pad_or_trim(extractor(clip), frames)
        encoded = self._model.model.encode(
            get_ctranslate2_storage(np.ascontiguousarray(features[None])), to_cpu=False
        )
        multilingual = self._model.model.is_multilingual
        if multilingual and not language:
            language = self._model.model.detect_language(encoded)[0][0][0][2:-2]
        tokenizer = Tokenizer(
            self._model.hf_tokenizer, multilingual, task="transcribe", language=language or "en"
        )
        max_tokens = max(16, round(MAX_TOKENS_PER_S * clip.size / SPEECH_RATE_HZ))
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        (result,) = self._model.model.generate(
            encoded,
            [prompt],
            beam_size=int(self._params.get("beam_size", 1)),
            # CTranslate2 4.8 stops after max_length / 2 new tokens (measured; its docs say
            # max_length). Twice the budget bounds a loop either way; the cap must never be
            # what ends a decode, or fast speech loses its last words silently.
            max_length=2 * (max_tokens + len(prompt) + 1),
            return_no_speech_prob=True,
            return_scores=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        tokens = result.sequences_ids[0]
        if result.no_speech_prob >= float(self._params.get("no_speech_threshold", 0.6)):
            return "", language
        text = tokenizer.decode(tokens)
        encoded_text = text.encode()
        ratio = len(encoded_text) / max(1, len(zlib.compress(encoded_text)))
        # As faster-whisper reads CTranslate2's length-normalised score (length_penalty 1).
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if (
            len(tokens) > max_tokens
            or ratio > MAX_COMPRESSION_RATIO
            or avg_logprob < MIN_AVG_LOGPROB
            or ends_in_a_repeat(text)
        ):
            return None
        return text, language

    def _transcribe_batch(
        self, clips: list[np.ndarray], language: str | None
    ) -> list[tuple[str, str | None]]:
        return [self._transcribe_one(clip, language) for clip in clips]
