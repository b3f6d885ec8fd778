"""Chat LMs in GGUF through llama.cpp (`llama-cpp-python`): quantised weights, fast CPU decoding.

The same `ChatModel` contract as the transformers backend. What differs is the
runtime: llama.cpp runs the GGUF's quantised weights directly (no dequantised
copy) with its own threads, which on a small CPU decodes several times faster
than a float32 transformers model of the same size. It keeps its KV cache
between calls and reuses the longest common token prefix of the next prompt
itself, so with `fit_context`'s stepped trimming each turn prefills only the new
tokens, as the transformers backend's own cache reuse does; when the trimming
cuts the oldest turns, they are shifted out of the cache rather than the kept
turns prefilled again (`_shift_out_dropped_turns`).

Sampling matches the transformers backend's meaning (temperature, top-p, top-k
50, no min-p), with one difference: llama.cpp's repetition penalty looks back over
the last 64 tokens only, transformers' over the whole sequence.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from workbench.models.base import (
    ChatMessage,
    ChatModel,
    ContextTooLong,
    GenerationParams,
    common_prefix_length,
)
from workbench.models.sources import resolve_source

# Tokens between the `fit_context` estimate (content + 4 per message) and the
# rendered template, kept free in the context window on top of the reply.
_TEMPLATE_SLACK_TOKENS = 64


class LlamaCppChatModel(ChatModel):
    """Any GGUF chat model with a chat template in its metadata, by local file, folder or hub id.

    `model`: a `.gguf` file, a folder (or `package:` reference) holding `gguf_file`, or a
    hub repository id with `gguf_file` the file (or glob) to fetch from it.
    params: the `GenerationParams` fields, `gguf_file`, `threads` (CPU threads, default
    all cores), `top_k` (default 50, as transformers), `context_window` (llama.cpp's
    n_ctx; default the prompt budget + the longest reply + slack), `reuse_kv_cache`
    (default true; false evaluates every prompt from scratch, for comparisons).
    `device: cuda` offloads every layer (needs a CUDA build of llama-cpp-python).
    """

    def _load(self) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        defaults = self.default_params
        self._window = int(
            self.spec.params.get(
                "context_window",
                defaults.context_tokens + defaults.max_new_tokens + _TEMPLATE_SLACK_TOKENS,
            )
        )
        options: dict[str, Any] = {
            "n_ctx": self._window,
            "n_batch": min(self._window, 512),
            "n_threads": int(self.spec.params.get("threads", os.cpu_count() or 1)),
            "n_gpu_layers": -1 if self.device == "cuda" else 0,
            "verbose": False,
        }
        gguf = self.spec.params.get("gguf_file")
        source = resolve_source(self.spec.model)
        local = Path(source)
        if local.is_file():
            self._llm: Any = Llama(model_path=str(local), **options)
        elif local.is_dir():
            if not gguf:
                raise ValueError(f"{self.spec.name}: params.gguf_file names the file in {source}")
            path = local / str(gguf)
            if not path.is_file():
                raise FileNotFoundError(f"{self.spec.name}: {path} does not exist")
            self._llm = Llama(model_path=str(path), **options)
        else:  # a hub repository: llama-cpp-python fetches (or finds cached) the file
            if not gguf:
                raise ValueError(
                    f"{self.spec.name}: params.gguf_file names the file in hub repo {source}"
                )
            self._llm = Llama.from_pretrained(repo_id=source, filename=str(gguf), **options)
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(
                f"{self.spec.name}: the GGUF of {self.spec.model} has no chat template"
            )
        eos, bos = self._llm.token_eos(), self._llm.token_bos()
        self._format = Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(eos),
            bos_token=self._token_text(bos),
        )
        self._lock = threading.Lock()
        self.reused_prefix_tokens = 0
        self._warm_up()

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return bytes(self._llm.detokenize([token], special=True)).decode("utf-8", "replace")

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _prompt_tokens(self, messages: list[ChatMessage], reply_tokens: int) -> list[int]:
        """The chat template rendered and tokenized; checked against the context window."""
        history: list[Any] = [m.model_dump() for m in messages]  # the OpenAI-style dicts it takes
        rendered = self._format(messages=history).prompt
        # The template writes any BOS itself, and its role markers are special tokens.
        tokens: list[int] = self._llm.tokenize(
            rendered.encode("utf-8"), add_bos=False, special=True
        )
        if len(tokens) + reply_tokens > self._window:
            raise ContextTooLong(
                f"{self.spec.name}: the prompt takes {len(tokens)} tokens and the reply up to "
                f"{reply_tokens}; the context window is {self._window} (params.context_window)"
            )
        return tokens

    def _generate(
        self,
        messages: list[ChatMessage],
        params: GenerationParams,
        emit: Callable[[str], None],
        should_stop: Callable[[], bool],
    ) -> None:
        prompt = self._prompt_tokens(messages, params.max_new_tokens)
        with self._lock:
            if not self.spec.params.get("reuse_kv_cache", True):
                self._llm.reset()
            else:
                self._shift_out_dropped_turns(prompt)
            # llama.cpp keeps the evaluated tokens and re-uses the longest common
            # prefix with the new prompt by itself; this only reports how much.
            self.reused_prefix_tokens = common_prefix_length(
                list(self._llm.input_ids[: self._llm.n_tokens]), prompt
            )
            pieces = self._llm.create_completion(
                prompt,
                max_tokens=params.max_new_tokens,
                temperature=params.temperature,  # 0: greedy
                top_p=params.top_p,
                top_k=int(self.spec.params.get("top_k", 50)),
                min_p=0.0,
                repeat_penalty=params.repetition_penalty,
                seed=params.seed,
                stream=True,
            )
            try:
                for piece in pieces:
                    text = piece["choices"][0]["text"]
                    if text:
                        emit(text)
                    if should_stop():
                        break
            finally:
                pieces.close()  # an abandoned stream stops decoding here, not at max_tokens

    def _shift_out_dropped_turns(self, prompt: list[int]) -> None:
        """Drop from the KV cache the turns `fit_context` cut, keeping the rest without re-prefill.

        After a cut the prompt is the cached tokens with a block (the oldest turns)
        taken out after the system prompt. llama.cpp's common-prefix reuse alone
        would keep only the system prompt and prefill every kept turn again (~1 s
        for 300 tokens on 2 cores). Instead the block is removed from the cache and
        the positions after it shifted down (a RoPE re-rotation, what llama.cpp's
        own server does on a context shift), so only the new turn is prefilled.
        """
        import llama_cpp

        evaluated = [int(t) for t in self._llm.input_ids[: self._llm.n_tokens]]
        found = _dropped_block(evaluated, prompt)
        if found is None:
            return
        start, dropped, kept = found
        memory = llama_cpp.llama_get_memory(self._llm.ctx)
        if not llama_cpp.llama_memory_can_shift(memory):
            return  # this model's positions cannot be shifted: plain prefix reuse
        end = start + dropped + kept
        llama_cpp.llama_memory_seq_rm(memory, -1, end, -1)
        llama_cpp.llama_memory_seq_rm(memory, -1, start, start + dropped)
        llama_cpp.llama_memory_seq_add(memory, 0, start + dropped, end, -dropped)
        remaining = evaluated[:start] + evaluated[start + dropped : end]
        self._llm.input_ids[: len(remaining)] = remaining
        self._llm.n_tokens = len(remaining)

    def _option_logprobs(self, messages: list[ChatMessage], options: list[str]) -> list[float]:
        import llama_cpp

        encoded = [
            self._llm.tokenize(o.encode("utf-8"), add_bos=False, special=False) for o in options
        ]
        if not all(encoded):
            raise ValueError("an option to score is empty")
        prompt = self._prompt_tokens(messages, max(len(t) for t in encoded))
        vocab = self._llm.n_vocab()

        def next_token_logprobs() -> np.ndarray:
            # Logits of the last evaluated position (llama.cpp keeps only that one
            # unless the context was made with logits_all, which costs n_ctx x vocab).
            logits = np.ctypeslib.as_array(
                llama_cpp.llama_get_logits_ith(self._llm.ctx, -1), shape=(vocab,)
            ).astype(np.float64)
            shifted = logits - logits.max()
            result: np.ndarray = shifted - np.log(np.exp(shifted).sum())
            return result

        with self._lock:
            self._llm.reset()
            self._llm.eval(prompt)
            first = next_token_logprobs()
            scores = []
            for tokens in encoded:
                score = float(first[tokens[0]])
                self._llm.n_tokens = len(prompt)  # back to the prompt; eval drops the rest
                for token, following in itertools.pairwise(tokens):
                    self._llm.eval([token])
                    score += float(next_token_logprobs()[following])
                scores.append(score)
            return scores


# A kept run shorter than this is not worth a cache shift.
_MIN_SHIFTED_TOKENS = 16


def _dropped_block(evaluated: list[int], prompt: list[int]) -> tuple[int, int, int] | None:
    """(start, dropped, kept) when `prompt` continues `evaluated` with `dropped` tokens cut at `start`.

    That is: the two agree up to `start`, and after skipping `dropped` cached tokens
    the next `kept` cached tokens are the prompt's next ones (the turns that stayed).
    The longest such `kept` wins; None when nothing worth shifting lines up.
    """
    start = common_prefix_length(evaluated, prompt)
    rest, new = evaluated[start:], prompt[start:]
    if not rest or not new:
        return None
    best: tuple[int, int, int] | None = None
    for dropped in range(1, len(rest)):
        if rest[dropped] != new[0]:
            continue
        kept = common_prefix_length(rest[dropped:], new)
        if kept >= _MIN_SHIFTED_TOKENS and (best is None or kept > best[2]):
            best = (start, dropped, kept)
    return best
