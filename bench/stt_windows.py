"""WER of the live STT's short encoder window against Whisper's 30 s window, on speech no setting was tuned on.

The live spec (`whisper-tiny-en-ct2`) encodes clips up to 7.5 s in a 10 s
window, ~3x faster on CPU; it was chosen on the packaged recordings and the
piper voice. This bench speaks held-out sentences in other voices, at other
speeds and under noise (workbench_datasets/untuned.py, built once under the
data folder) and prints, per condition: WER of each window, the paired
difference with its 95% bootstrap interval, how often the short window's
result was refused and the clip decoded again in full, and seconds per clip.

    ./dev python bench/stt_windows.py [--rebuild] [--limit 10] [--window 15]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evals.stats import paired_difference, ratio_of_sums
from workbench.config import REPO_ROOT, get_settings
from workbench.metrics.wer import error_rates
from workbench.models import SpeechToText, load_model, load_spec
from workbench_datasets.manifest import Manifest, read_manifest, write_manifest
from workbench_datasets.untuned import condition_of, untuned_rows

SPEC = REPO_ROOT / "configs" / "models" / "whisper-tiny-en-ct2.yaml"


def untuned_manifest(rebuild: bool) -> Manifest:
    """The untuned set under the data folder, built on first use."""
    folder = get_settings().data_dir / "datasets" / "untuned"
    path = folder / "manifest.jsonl"
    if rebuild or not path.exists():
        rows = asyncio.run(untuned_rows(folder))
        write_manifest(path, rows)
    return read_manifest(path, name="untuned")


def window_models(window_s: float | None) -> dict[str, SpeechToText]:
    """The spec with Whisper's 30 s window and with its short one (as shipped, or `window_s`)."""
    spec = load_spec(SPEC)
    full = {k: v for k, v in spec.params.items() if k != "short_window_s"}
    short = {**spec.params, "short_window_s": window_s or spec.params["short_window_s"]}
    models = {
        "30 s": load_model(spec.model_copy(update={"params": full})),
        f"{short['short_window_s']:g} s": load_model(spec.model_copy(update={"params": short})),
    }
    assert all(isinstance(m, SpeechToText) for m in models.values())
    return models  # type: ignore[return-value]


async def transcribe_all(
    model: SpeechToText, clips: list[np.ndarray], label: str
) -> tuple[list[str], list[float], list[bool]]:
    """Each clip's transcript, seconds, and whether a short-window result was refused."""
    texts, seconds, refused = [], [], []
    decodes = getattr(model, "decodes", None)
    for clip in tqdm(clips, desc=f"{label} window", unit="clip"):
        fallbacks = decodes["fallback"] if decodes is not None else 0
        start = time.perf_counter()
        texts.append((await model.transcribe(clip, language="en")).text)
        seconds.append(time.perf_counter() - start)
        refused.append(decodes is not None and decodes["fallback"] > fallbacks)
    return texts, seconds, refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="speak the set again")
    parser.add_argument("--limit", type=int, help="at most this many clips per condition")
    parser.add_argument("--window", type=float, help="short window, s (default: the spec's)")
    args = parser.parse_args()

    manifest = untuned_manifest(args.rebuild)
    by_condition: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(manifest.rows):
        if args.limit is None or len(by_condition[condition_of(row)]) < args.limit:
            by_condition[condition_of(row)].append(index)
    chosen = sorted(i for indices in by_condition.values() for i in indices)
    rows = [manifest.rows[i] for i in chosen]
    clips = [manifest.load_audio(row) for row in rows]
    references = [row.reference for row in rows]

    models = window_models(args.window)
    texts: dict[str, list[str]] = {}
    seconds: dict[str, list[float]] = {}
    full, short = list(models)
    for label, model in models.items():
        texts[label], seconds[label], refused = asyncio.run(transcribe_all(model, clips, label))

    def counts(label: str, indices: list[int]) -> np.ndarray:
        out = []
        for i in indices:
            rates = error_rates([references[i]], [texts[label][i]])
            errors = rates.substitutions + rates.deletions + rates.insertions
            out.append((errors, rates.reference_words))
        return np.array(out, dtype=float)

    groups = {name: [chosen.index(i) for i in idx] for name, idx in sorted(by_condition.items())}
    groups["all"] = list(range(len(rows)))
    print(f"\nWER of Whisper tiny.en (CTranslate2 int8), {len(rows)} clips, 2 cores:\n")
    print(
        f"| condition | clips | WER {full} | WER {short} | {short} - {full} [95% CI] "
        f"| {short} refused | s/clip {full} | s/clip {short} |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, indices in groups.items():
        a, b = counts(full, indices), counts(short, indices)
        diff = paired_difference(a, b, ratio_of_sums)
        print(
            f"| {name} | {len(indices)} | {ratio_of_sums(a):.3f} | {ratio_of_sums(b):.3f} "
            f"| {diff.estimate:+.3f} [{diff.low:+.3f}, {diff.high:+.3f}] "
            f"| {sum(refused[i] for i in indices)} "
            f"| {np.mean([seconds[full][i] for i in indices]):.3f} "
            f"| {np.mean([seconds[short][i] for i in indices]):.3f} |"
        )


if __name__ == "__main__":
    main()
