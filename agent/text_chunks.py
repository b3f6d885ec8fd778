"""Where the agent's reply is cut for speech: the first clause early, then whole sentences.

A non-streaming TTS speaks nothing until it has a chunk of text. livekit-agents'
default cuts at sentence ends and also waits for the start of the next sentence,
so a long first sentence from the LLM holds back the first audio for its whole
generation. The first chunk here ends at the first sentence end, or at a clause
mark (`,` `;` `:` `—`) once it has a few words, or after `max_words` (6) words; the
rest of the reply is cut into sentences as before (prosody is best over whole
sentences, and by then audio is already playing).
"""

from __future__ import annotations

from livekit.agents import tokenize
from livekit.agents.tokenize.token_stream import BufferedSentenceStream
from livekit.agents.tokenize.tokenizer import SentenceStream, TokenData

from workbench.speech_text import first_chunk_end


class FirstClauseTokenizer(tokenize.SentenceTokenizer):
    """Sentence tokenizer whose stream emits the reply's first clause as soon as it is complete."""

    def __init__(self, *, min_words: int = 3, max_words: int = 6) -> None:
        self._min_words = min_words
        self._max_words = max_words
        self._sentences = tokenize.blingfire.SentenceTokenizer(retain_format=True)

    def tokenize(self, text: str, *, language: str | None = None) -> list[str]:
        end = first_chunk_end(text + " ", min_words=self._min_words, max_words=self._max_words)
        if end is None or end >= len(text):
            return [text.strip()] if text.strip() else []
        return [text[:end].strip(), *self._sentences.tokenize(text[end:], language=language)]

    def stream(self, *, language: str | None = None) -> SentenceStream:
        return _FirstClauseStream(
            self._sentences, min_words=self._min_words, max_words=self._max_words
        )


class _FirstClauseStream(BufferedSentenceStream):
    """blingfire's buffered sentence stream, with the first chunk cut early."""

    def __init__(
        self, sentences: tokenize.SentenceTokenizer, *, min_words: int, max_words: int
    ) -> None:
        # the settings blingfire's own stream uses: sentences of >= 20 characters,
        # emitted once 10 characters of the next one have arrived
        super().__init__(tokenizer=sentences.tokenize, min_token_len=20, min_ctx_len=10)
        self._min_words = min_words
        self._max_words = max_words
        self._first_done = False

    def push_text(self, text: str) -> None:
        if self._first_done:
            super().push_text(text)
            return
        self._check_not_closed()
        self._in_buf += text
        end = first_chunk_end(self._in_buf, min_words=self._min_words, max_words=self._max_words)
        if end is None:
            return
        head, rest = self._in_buf[:end].strip(), self._in_buf[end:].lstrip()
        self._in_buf = ""
        self._first_done = True
        self._event_ch.send_nowait(TokenData(token=head, segment_id=self._current_segment_id))
        if rest:
            super().push_text(rest)

    def flush(self) -> None:
        super().flush()
        self._first_done = False  # a new segment starts with a short chunk again
