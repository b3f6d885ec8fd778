"""Word and character error rates via jiwer, with one text normaliser for reference and hypothesis.

Raw WER is dominated by numbers, hyphens and punctuation; Whisper's English
normaliser (from transformers when installed, else a faithful basic fallback)
is applied to both sides, always the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import jiwer


@lru_cache(maxsize=1)
def _normaliser() -> Callable[[str], str]:
    try:
        from transformers.models.whisper.english_normalizer import EnglishTextNormalizer
    except ImportError:
        return _basic_normalise
    normalise: Callable[[str], str] = EnglishTextNormalizer({})
    return normalise


def _basic_normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[^\w\s']", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def normalise(text: str) -> str:
    """The text as WER compares it (lower case, no punctuation, spelled-out forms unified)."""
    return _normaliser()(text).strip()


@dataclass(frozen=True)
class ErrorRates:
    """Corpus-level WER/CER and the word edit counts behind them."""

    wer: float
    cer: float
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> ErrorRates:
    """Corpus WER and CER after normalising both sides; an empty reference is an error."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    refs = [normalise(r) for r in references]
    hyps = [normalise(h) for h in hypotheses]
    empty = [i for i, r in enumerate(refs) if not r]
    if empty:
        raise ValueError(
            f"references {empty} are empty after normalisation: WER is undefined for them"
        )
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    return ErrorRates(
        wer=words.wer,
        cer=chars.cer,
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        reference_words=sum(len(r.split()) for r in refs),
    )
