"""Word and character error rates via jiwer, with one text normaliser for reference and hypothesis.

Raw WER is dominated by numbers, hyphens, punctuation and spelling variants;
Whisper's English normaliser (`whisper-normalizer`, a copy of OpenAI's with its
British -> American spelling map, so "cancelled" and "canceled" are one word)
is applied to both sides, always the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import jiwer


@lru_cache(maxsize=1)
def _normaliser() -> Callable[[str], str]:
    from whisper_normalizer.english import EnglishTextNormalizer

    normalise: Callable[[str], str] = EnglishTextNormalizer()
    return normalise


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
