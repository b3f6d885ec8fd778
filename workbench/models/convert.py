"""Turn packaged checkpoints into what a backend loads, once, into the per-user cache.

- `whisper_ct2_to_transformers`: a CTranslate2 Whisper (`model.bin` + `config.json`
  + `tokenizer.json`, as faster-whisper ships it) to a transformers
  `WhisperForConditionalGeneration` folder. The tensors map one to one, except
  that CTranslate2 fuses q/k/v (self-attention) and k/v (cross-attention) into
  one matrix, which is split here; the k projection has no bias in transformers.
- `gguf_to_safetensors`: a GGUF causal LM (dequantised by transformers) re-saved
  as safetensors, so later loads take ~0.1 s instead of ~20 s.

Both write into a staging folder renamed on success, keyed by the source's
size and a hash of its head, so a changed source converts again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from workbench.config import get_settings

_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def _source_key(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
    digest.update(str(path.stat().st_size).encode())
    return digest.hexdigest()[:16]


def _cached(name: str, source: Path, build: Callable[[Path], None]) -> Path:
    """`<cache>/converted/<name>-<key>`, built by `build(staging_dir)` the first time."""
    target = get_settings().cache_dir / "converted" / f"{name}-{_source_key(source)}"
    if (target / ".complete").exists():
        return target
    staging = target.with_name(target.name + f".building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        build(staging)
        (staging / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


# -- CTranslate2 Whisper ------------------------------------------------------------


def _read_string(handle: BinaryIO) -> str:
    (length,) = struct.unpack("<H", handle.read(2))
    return handle.read(length)[:-1].decode("utf-8")


def read_ct2_variables(model_bin: Path) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 `model.bin` (binary format version 6), aliases resolved."""
    variables: dict[str, np.ndarray] = {}
    with model_bin.open("rb") as handle:
        (version,) = struct.unpack("<I", handle.read(4))
        if version != 6:
            raise ValueError(
                f"{model_bin}: CTranslate2 binary version {version}; this reader knows 6"
            )
        _read_string(handle)  # spec name
        handle.read(4)  # spec revision
        (count,) = struct.unpack("<I", handle.read(4))
        for _ in range(count):
            name = _read_string(handle)
            rank = handle.read(1)[0]
            shape = struct.unpack(f"<{rank}I", handle.read(4 * rank)) if rank else ()
            dtype_id = handle.read(1)[0]
            (num_bytes,) = struct.unpack("<I", handle.read(4))
            raw = handle.read(num_bytes)
            if dtype_id not in _CT2_DTYPES:
                raise ValueError(
                    f"{model_bin}: variable {name} has unsupported dtype id {dtype_id}"
                )
            variables[name] = np.frombuffer(raw, dtype=_CT2_DTYPES[dtype_id]).reshape(shape)
        (aliases,) = struct.unpack("<I", handle.read(4))
        for _ in range(aliases):
            alias, target = _read_string(handle), _read_string(handle)
            variables[alias] = variables[target]
    return variables


def _whisper_tensors(
    ct2: dict[str, np.ndarray], layers: dict[str, int]
) -> Iterator[tuple[str, np.ndarray]]:
    def ln(src: str, dst: str) -> Iterator[tuple[str, np.ndarray]]:
        yield f"{dst}.weight", ct2[f"{src}/gamma"]
        yield f"{dst}.bias", ct2[f"{src}/beta"]

    def linear(src: str, dst: str) -> Iterator[tuple[str, np.ndarray]]:
        yield f"{dst}.weight", ct2[f"{src}/weight"]
        yield f"{dst}.bias", ct2[f"{src}/bias"]

    def split(src: str, dsts: list[str]) -> Iterator[tuple[str, np.ndarray]]:
        weights = np.split(ct2[f"{src}/weight"], len(dsts))
        biases = np.split(ct2[f"{src}/bias"], len(dsts))
        for dst, weight, bias in zip(dsts, weights, biases, strict=True):
            yield f"{dst}.weight", weight
            if not dst.endswith("k_proj"):  # transformers' Whisper k projection has no bias
                yield f"{dst}.bias", bias

    def self_attention(src: str, dst: str) -> Iterator[tuple[str, np.ndarray]]:
        yield from ln(f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
        yield from split(
            f"{src}/self_attention/linear_0", [f"{dst}.self_attn.{p}_proj" for p in "qkv"]
        )
        yield from linear(f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj")

    def ffn(src: str, dst: str) -> Iterator[tuple[str, np.ndarray]]:
        yield from ln(f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
        yield from linear(f"{src}/ffn/linear_0", f"{dst}.fc1")
        yield from linear(f"{src}/ffn/linear_1", f"{dst}.fc2")

    yield "model.encoder.conv1.weight", ct2["encoder/conv1/weight"]
    yield "model.encoder.conv1.bias", ct2["encoder/conv1/bias"]
    yield "model.encoder.conv2.weight", ct2["encoder/conv2/weight"]
    yield "model.encoder.conv2.bias", ct2["encoder/conv2/bias"]
    yield "model.encoder.embed_positions.weight", ct2["encoder/position_encodings/encodings"]
    for i in range(layers["encoder"]):
        src, dst = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        yield from self_attention(src, dst)
        yield from ffn(src, dst)
    yield from ln("encoder/layer_norm", "model.encoder.layer_norm")
    yield "model.decoder.embed_tokens.weight", ct2["decoder/embeddings/weight"]
    yield "model.decoder.embed_positions.weight", ct2["decoder/position_encodings/encodings"]
    for i in range(layers["decoder"]):
        src, dst = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        yield from self_attention(src, dst)
        yield from ln(f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm")
        yield from linear(f"{src}/attention/linear_0", f"{dst}.encoder_attn.q_proj")
        yield from split(
            f"{src}/attention/linear_1",
            [f"{dst}.encoder_attn.k_proj", f"{dst}.encoder_attn.v_proj"],
        )
        yield from linear(f"{src}/attention/linear_2", f"{dst}.encoder_attn.out_proj")
        yield from ffn(src, dst)
    yield from ln("decoder/layer_norm", "model.decoder.layer_norm")


def _count_layers(ct2: dict[str, np.ndarray], side: str) -> int:
    layer = re.compile(rf"^{side}/layer_(\d+)/")
    return len({match[1] for name in ct2 if (match := layer.match(name))})


def whisper_ct2_to_transformers(ct2_dir: Path) -> Path:
    """A transformers Whisper folder (config, weights, tokenizer, feature extractor) for a CT2 Whisper."""
    ct2_dir = Path(ct2_dir)

    def build(out: Path) -> None:
        import torch
        from safetensors.torch import save_file
        from transformers import (
            GenerationConfig,
            WhisperConfig,
            WhisperFeatureExtractor,
            WhisperTokenizerFast,
        )

        ct2 = read_ct2_variables(ct2_dir / "model.bin")
        meta: dict[str, Any] = json.loads((ct2_dir / "config.json").read_text())
        vocab, d_model = ct2["decoder/embeddings/weight"].shape
        layers = {
            "encoder": _count_layers(ct2, "encoder"),
            "decoder": _count_layers(ct2, "decoder"),
        }
        heads = {side: int(ct2[f"{side}/num_heads"]) for side in ("encoder", "decoder")}
        ffn = ct2["encoder/layer_0/ffn/linear_0/weight"].shape[0]
        multilingual = vocab >= 51865
        config = WhisperConfig(
            vocab_size=vocab,
            num_mel_bins=ct2["encoder/conv1/weight"].shape[1],
            d_model=d_model,
            encoder_layers=layers["encoder"],
            decoder_layers=layers["decoder"],
            encoder_attention_heads=heads["encoder"],
            decoder_attention_heads=heads["decoder"],
            encoder_ffn_dim=ffn,
            decoder_ffn_dim=ffn,
            max_source_positions=ct2["encoder/position_encodings/encodings"].shape[0],
            max_target_positions=ct2["decoder/position_encodings/encodings"].shape[0],
            decoder_start_token_id=50258 if multilingual else 50257,
            bos_token_id=50257,
            eos_token_id=50257 if multilingual else 50256,
            pad_token_id=50257 if multilingual else 50256,
            tie_word_embeddings=True,
        )
        config.architectures = ["WhisperForConditionalGeneration"]
        config.save_pretrained(out)
        tensors = {
            name: torch.from_numpy(np.array(value)) for name, value in _whisper_tensors(ct2, layers)
        }
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
        generation = GenerationConfig(
            decoder_start_token_id=config.decoder_start_token_id,
            bos_token_id=config.bos_token_id,
            eos_token_id=config.eos_token_id,
            pad_token_id=config.pad_token_id,
            suppress_tokens=meta.get("suppress_ids", []),
            begin_suppress_tokens=meta.get("suppress_ids_begin", [220, 50256]),
            no_timestamps_token_id=50363 if multilingual else 50362,
            is_multilingual=multilingual,
            alignment_heads=meta.get("alignment_heads"),
        )
        generation.save_pretrained(out)
        tokenizer = WhisperTokenizerFast(tokenizer_file=str(ct2_dir / "tokenizer.json"))
        tokenizer.save_pretrained(out)
        WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(out)

    return _cached("whisper-transformers", ct2_dir / "model.bin", build)


# -- GGUF causal LM -------------------------------------------------------------------


def gguf_to_safetensors(gguf_path: Path) -> Path:
    """A safetensors copy of a GGUF chat model (weights, config, tokenizer with its chat template)."""
    gguf_path = Path(gguf_path)

    def build(out: Path) -> None:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        kwargs = {"gguf_file": gguf_path.name}
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
        loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, **kwargs)
        # save_pretrained refuses a GGUF-loaded model: copy its weights into a fresh one.
        config = AutoConfig.from_pretrained(gguf_path.parent, **kwargs)
        fresh = AutoModelForCausalLM.from_config(config)
        fresh.load_state_dict(loaded.state_dict())
        fresh.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)

    return _cached(f"gguf-{gguf_path.stem.lower()}", gguf_path, build)
