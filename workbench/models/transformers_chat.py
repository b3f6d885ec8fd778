"""Causal chat LMs through transformers: the tokenizer's chat template, streamed tokens, early stop."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.models.base import ChatMessage, ChatModel, GenerationParams, common_prefix_length
from workbench.models.convert import gguf_to_safetensors
from workbench.models.sources import resolve_source


class TransformersChatModel(ChatModel):
    """Any instruct model with a chat template, by hub id or folder.

    params: the `GenerationParams` fields, `gguf_file` (a GGUF inside the folder: converted
    once to safetensors), `threads` (torch CPU threads).
    """

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = resolve_source(self.spec.model)
        gguf = self.spec.params.get("gguf_file")
        if gguf:
            source = str(gguf_to_safetensors(Path(source) / str(gguf)))
        if self.device == "cpu":
            torch.set_num_threads(int(self.spec.params.get("threads", os.cpu_count() or 1)))
        dtype = {
            "auto": torch.float16 if self.device == "cuda" else torch.float32,
            "float32": torch.float32,
            "float16": torch.float16,
            "bfloat16": torch.bfloat16,
        }[self.spec.dtype if self.spec.dtype != "int8" else "auto"]
        self._tokenizer: Any = AutoTokenizer.from_pretrained(source, revision=self.spec.revision)
        if self._tokenizer.chat_template is None:
            raise ValueError(
                f"{self.spec.name}: the tokenizer of {self.spec.model} has no chat template"
            )
        self._model: Any = AutoModelForCausalLM.from_pretrained(
            source, revision=self.spec.revision, dtype=dtype
        ).to(self.device)
        self._model.eval()
        self._cache_lock = threading.Lock()
        self._cached: tuple[list[int], Any] | None = None
        self.reused_prefix_tokens = 0
        self._warm_up()

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def _generate(
        self,
        messages: list[ChatMessage],
        params: GenerationParams,
        emit: Callable[[str], None],
        should_stop: Callable[[], bool],
    ) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextStreamer

        class _Emit(TextStreamer):  # type: ignore[misc]
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text:
                    emit(text)

        class _Stop(StoppingCriteria):  # type: ignore[misc]
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full(
                    (input_ids.shape[0],), should_stop(), dtype=torch.bool, device=input_ids.device
                )

        inputs = self._tokenizer.apply_chat_template(
            [m.model_dump() for m in messages],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        ).to(self.device)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        sampling = params.temperature > 0
        with self._cache_lock, torch.inference_mode():
            past = self._reusable_cache(inputs["input_ids"])
            output = self._model.generate(
                **inputs,
                past_key_values=past,
                max_new_tokens=params.max_new_tokens,
                do_sample=sampling,
                temperature=params.temperature if sampling else None,
                top_p=params.top_p if sampling else None,
                repetition_penalty=params.repetition_penalty,
                streamer=_Emit(self._tokenizer, skip_prompt=True, skip_special_tokens=True),
                stopping_criteria=StoppingCriteriaList([_Stop()]),
                pad_token_id=self._tokenizer.eos_token_id,
                return_dict_in_generate=True,
            )
            self._remember_cache(output.sequences, output.past_key_values)

    def _option_logprobs(self, messages: list[ChatMessage], options: list[str]) -> list[float]:
        import torch

        prompt = self._tokenizer.apply_chat_template(
            [m.model_dump() for m in messages],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )["input_ids"][0].tolist()
        encoded = [self._tokenizer.encode(o, add_special_tokens=False) for o in options]
        with self._cache_lock, torch.inference_mode():
            if all(len(tokens) == 1 for tokens in encoded):
                # Single-token options (score digits): one forward pass reads them all.
                ids = torch.tensor([prompt], device=self.device)
                logps = torch.log_softmax(self._model(input_ids=ids).logits[0, -1].float(), dim=-1)
                return [float(logps[tokens[0]]) for tokens in encoded]
            scores = []
            for tokens in encoded:
                ids = torch.tensor([prompt + tokens], device=self.device)
                logits = self._model(input_ids=ids).logits[0].float()
                steps = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
                scores.append(float(steps[torch.arange(len(tokens)), torch.tensor(tokens)].sum()))
            return scores

    # -- prefix (KV) cache reuse ---------------------------------------------------
    # A conversation's next prompt is the previous prompt, the previous reply and
    # a new user turn: keeping the key/value cache of the last call and cropping
    # it to the longest common token prefix turns each turn's prefill from the
    # whole history into just the new tokens (time to first token ~flat with
    # conversation length). Trimmed history or another conversation shares less
    # prefix, and the reuse shrinks to what still matches (at least nothing).

    def _reusable_cache(self, input_ids: Any) -> Any:
        if self._cached is None or not self.spec.params.get("reuse_kv_cache", True):
            return None
        cached_ids, cache = self._cached
        new = input_ids[0].tolist()
        limit = min(
            len(cached_ids), len(new) - 1, int(cache.get_seq_length())
        )  # >= 1 token left to prefill
        common = min(common_prefix_length(cached_ids, new), limit)
        if common < 16:  # not worth it
            return None
        surplus = int(cache.get_seq_length()) - common
        if surplus:
            cache.crop(-surplus)  # transformers 5: a negative count drops that many trailing tokens
        self.reused_prefix_tokens = common
        return cache

    def _remember_cache(self, sequences: Any, cache: Any) -> None:
        if cache is None:
            self._cached = None
            return
        self._cached = (sequences[0].tolist()[: int(cache.get_seq_length())], cache)
