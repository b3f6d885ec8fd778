"""ASR replay throughput of the eval runner against a naive per-utterance pipeline loop; judge speed.

Same model (Whisper tiny.en, converted once to a transformers checkpoint),
same clips (Debian's pocketsphinx-testdata recordings, repeated to make the
set longer), same machine, one run each, printed as tables:

1. RTFx (seconds of audio per second of compute) of
   - the naive loop: `transformers.pipeline("automatic-speech-recognition")`
     called once per clip, as a notebook would;
   - the runner with the transformers backend, batched (batch 8 by default):
     one padded feature pass and one `generate` per batch;
   - the runner with the faster-whisper backend (CTranslate2 int8) for scale;
2. judge throughput of the prompt-quality task (replies scored per second).

    ./dev python bench/eval_throughput.py [--repeat 3] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evals.run_folder import RunFolder
from evals.runner import run_task
from evals.tasks.asr import AsrTask
from evals.tasks.prompt_quality import RUBRIC, SCORES
from workbench.audio import SPEECH_RATE_HZ
from workbench.config import REPO_ROOT
from workbench.metrics.wer import error_rates
from workbench.models import ChatMessage, ChatModel, load_model, load_spec
from workbench.models.convert import whisper_ct2_to_transformers
from workbench.models.sources import resolve_source
from workbench_datasets.manifest import ManifestRow, read_manifest, write_manifest
from workbench_datasets.pocketsphinx import pocketsphinx_rows

MODELS = REPO_ROOT / "configs" / "models"


def repeated_manifest(folder: Path, repeat: int) -> Path:
    rows = list(pocketsphinx_rows())
    copies = [
        ManifestRow(**{**row.model_dump(), "id": f"{row.id}#{n}"})
        for n in range(repeat)
        for row in rows
    ]
    return write_manifest(folder / "manifest.jsonl", copies)


def naive_pipeline(manifest_path: Path) -> tuple[float, float, float]:
    """(audio s, compute s, WER) of one pipeline call per clip."""
    import torch
    from transformers import pipeline

    torch.set_num_threads(os.cpu_count() or 1)
    checkpoint = whisper_ct2_to_transformers(
        Path(resolve_source(load_spec(MODELS / "whisper-tiny-en-hf.yaml").model))
    )
    # float32 as the runner uses on CPU: the converted checkpoint says float16, which
    # the pipeline would otherwise keep (and half precision is slow on CPU).
    asr = pipeline(
        "automatic-speech-recognition", model=str(checkpoint), device="cpu", dtype=torch.float32
    )
    manifest = read_manifest(manifest_path)
    asr(manifest.load_audio(manifest.rows[0]))  # warm-up, as the runner's load() does
    audio_s = compute_s = 0.0
    hypotheses = []
    for row in manifest.rows:
        samples = manifest.load_audio(row)
        t0 = time.perf_counter()
        hypotheses.append(asr({"raw": samples, "sampling_rate": SPEECH_RATE_HZ})["text"])
        compute_s += time.perf_counter() - t0
        audio_s += samples.size / SPEECH_RATE_HZ
    wer = error_rates([r.reference for r in manifest.rows], hypotheses).wer
    return audio_s, compute_s, wer


async def runner(
    manifest_path: Path, spec_name: str, batch_size: int, out: Path
) -> tuple[float, float, float]:
    """(audio s, compute s, WER) of the eval runner (compute: wall time of scoring, load excluded)."""
    task = AsrTask(
        spec=load_spec(MODELS / f"{spec_name}.yaml"), manifest=read_manifest(manifest_path)
    )
    task.load()
    t0 = time.perf_counter()
    result = await run_task(task, folder=RunFolder(out), batch_size=batch_size, progress=False)
    return result.metrics["audio_s"], time.perf_counter() - t0, result.metrics["wer"]


async def judge_throughput(samples: int) -> float:
    judge = load_model(MODELS / "smollm2-135m-instruct.yaml")
    assert isinstance(judge, ChatModel)
    messages = [
        ChatMessage(role="system", content=RUBRIC),
        ChatMessage(
            role="user",
            content="Conversation:\nUSER: What is the capital of France?\n\nAssistant reply to grade:\n"
            "The capital of France is Paris.\n\nScore (1-5):",
        ),
    ]
    t0 = time.perf_counter()
    for _ in range(samples):
        await judge.option_probabilities(messages, SCORES)
    return samples / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="copies of the 10 recordings")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--judge-samples", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        manifest = repeated_manifest(Path(tmp), args.repeat)
        rows = [
            ("naive pipeline loop (transformers)", *naive_pipeline(manifest)),
            (
                f"runner, transformers, batch {args.batch_size}",
                *asyncio.run(
                    runner(manifest, "whisper-tiny-en-hf", args.batch_size, Path(tmp) / "hf")
                ),
            ),
            (
                "runner, transformers, batch 1",
                *asyncio.run(runner(manifest, "whisper-tiny-en-hf", 1, Path(tmp) / "hf1")),
            ),
            (
                f"runner, faster-whisper int8, batch {args.batch_size}",
                *asyncio.run(
                    runner(manifest, "whisper-tiny-en-ct2", args.batch_size, Path(tmp) / "ct2")
                ),
            ),
        ]
    naive_rtfx = rows[0][1] / rows[0][2]
    print(f"\nASR replay, Whisper tiny.en, {rows[0][1]:.0f} s of audio, {os.cpu_count()} CPU cores")
    print(f"{'method':<44}{'compute s':>10}{'RTFx':>8}{'vs naive':>10}{'WER':>8}")
    for name, audio_s, compute_s, wer in rows:
        rtfx = audio_s / compute_s
        print(f"{name:<44}{compute_s:>10.1f}{rtfx:>8.1f}{rtfx / naive_rtfx:>9.2f}x{wer:>8.3f}")
    rate = asyncio.run(judge_throughput(args.judge_samples))
    print(f"\nLLM judge (SmolLM2-135M, 5 options per reply): {rate:.2f} replies scored per second")


if __name__ == "__main__":
    main()
