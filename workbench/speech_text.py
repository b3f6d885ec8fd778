"""Where a reply is cut for speech: one definition for the live agent, the TTS models and the evals.

The live agent speaks its reply's first clause as soon as it is complete, then
whole sentences (agent/text_chunks.py wraps this for livekit-agents); the
latency eval cuts the same way, or its voice-to-voice figure would measure
another pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")


def split_sentences(text: str) -> Iterator[str]:
    """Sentences (or clauses ending in . ! ? ; :), stripped and non-empty."""
    for piece in _SENTENCE_END.split(text):
        if piece.strip():
            yield piece.strip()


# A mark counts once the text after it has started (whitespace follows), so "3.5" and
# a comma that is still being generated do not cut.
_BOUNDARY = re.compile(r"(?P<sentence>[.!?\u2026]+)[\"')\]]*(?=\s)|[,;:\u2014](?=\s)")
_COMPLETE_WORD = re.compile(r"\S+(?=\s)")
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "prof"})


def first_chunk_end(text: str, *, min_words: int = 3, max_words: int = 6) -> int | None:
    """Index just past the first speakable chunk of `text`, or None while it is incomplete."""
    for mark in _BOUNDARY.finditer(text):
        words = text[: mark.start()].split()
        if mark.group("sentence"):
            if words and words[-1].lower().rstrip(".") in _ABBREVIATIONS:
                continue
            if words:
                return mark.end()
        elif len(words) >= min_words:
            return mark.end()
    complete = list(_COMPLETE_WORD.finditer(text))
    if len(complete) >= max_words:
        return complete[max_words - 1].end()
    return None


def take_chunks(pending: str, *, first: bool) -> tuple[list[str], str]:
    """The speakable chunks complete at the front of `pending` (a reply being generated), and the rest.

    With `first` (nothing of the reply spoken yet) the first chunk ends early, as
    `first_chunk_end` says; after it, chunks are whole sentences. A sentence is
    complete once text after its mark has started.
    """
    chunks: list[str] = []
    if first:
        end = first_chunk_end(pending)
        if end is None:
            return [], pending
        chunks.append(pending[:end].strip())
        pending = pending[end:]
    pieces = _SENTENCE_END.split(pending)
    *complete, rest = pieces if pieces else [""]
    chunks += [piece.strip() for piece in complete if piece.strip()]
    return [c for c in chunks if c], rest.lstrip() if complete else rest
