"""The transformers VITS backend on a small randomly initialised checkpoint built here.

No VITS checkpoint ships in a package (MODELS.md), so this checks the mechanics
a hub checkpoint goes through (load from a folder, tokenise, synthesize int16
audio at the model's rate, sentence streaming), not the voice quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.models import ModelSpec, TextToSpeech, load_model

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def tiny_vits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    folder = tmp_path_factory.mktemp("tiny-vits")
    symbols = ["<pad>", *list(" abcdefghijklmnopqrstuvwxyz.,!?'")]
    (folder / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(symbols)}))
    VitsTokenizer(
        vocab_file=str(folder / "vocab.json"), add_blank=True, normalize=True, phonemize=False
    ).save_pretrained(folder)
    config = VitsConfig(
        vocab_size=len(symbols),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        ffn_dim=64,
        flow_size=32,
        spectrogram_bins=65,
        upsample_initial_channel=32,
        upsample_rates=[8, 8, 4],
        upsample_kernel_sizes=[16, 16, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3]],
        duration_predictor_filter_channels=32,
        prior_encoder_num_flows=2,
        posterior_encoder_num_wavenet_layers=2,
        sampling_rate=16_000,
    )
    torch.manual_seed(0)
    VitsModel(config).save_pretrained(folder)
    return folder


async def test_vits_backend_synthesizes_each_sentence(tiny_vits: Path) -> None:
    spec = ModelSpec(
        name="tiny-vits",
        kind="tts",
        backend="transformers",
        model=str(tiny_vits),
        params={"seed": 1},
    )
    tts = load_model(spec)
    assert isinstance(tts, TextToSpeech)
    assert tts.sample_rate_hz == 16_000
    chunks = [c async for c in tts.synthesize("hello there. how are you?")]
    assert len(chunks) == 2
    for chunk in chunks:
        assert chunk.pcm.dtype == np.int16
        assert chunk.pcm.size > 0
    again = [c async for c in tts.synthesize("hello there.")]
    assert np.array_equal(again[0].pcm, chunks[0].pcm)  # the seed makes it reproducible
