"""Time `./dev up` from cold, warm and hot starts, with each first-time step; print tables.

- cold: empty artefact cache and empty `.local/`: the venv is made (torch and the
  rest from pip, llama-cpp-python compiled with the portable flags), the Go
  services built (Supabase Auth from its vendored source where the proxy refuses
  it), the cluster initialised, the local accounts made. With --cold-go the Go
  module and build caches are empty too, as on a fresh machine; otherwise Go
  reuses its own caches. pip's download cache is kept (torch is a few GB): the
  figure is a fresh machine's minus the download.
- model conversion: the transformers specs' one-time conversions (Whisper from
  CTranslate2, SmolLM2 from GGUF), which the tests and evals use; the CPU stack
  the agent runs needs none.
- warm: artefacts cached, `.local/` empty (what CI's fresh clone sees).
- hot: artefacts cached, cluster exists, services stopped (a developer's `up`).
- running: everything already up (idempotent `up`).

Runs on its own ports and folders, so a developer's running stack is untouched.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PORTS = {
    "WORKBENCH_POSTGRES_PORT": "55432",
    "WORKBENCH_AUTH_PORT": "19999",
    "WORKBENCH_LIVEKIT_PORT": "17880",
    "WORKBENCH_LIVEKIT_TCP_PORT": "17881",
    "WORKBENCH_LIVEKIT_UDP_PORT": "17882",
    "WORKBENCH_MAIL_PORT": "15425",
    "WORKBENCH_AGENT_PORT": "18089",
    "WORKBENCH_PANEL_PORT": "15006",
    "WORKBENCH_PANEL_METRICS_PORT": "19102",
    "WORKBENCH_LIVEKIT_METRICS_PORT": "16789",
    "WORKBENCH_PROMETHEUS_PORT": "19090",
}
_SERVICE_LINE = re.compile(r"^(\w+)\s+up \((?:prepare ([\d.]+) s, )?start ([\d.]+) s\)", re.M)
CONVERTED_STACK = """name: converted
stt: {repo}/configs/models/whisper-tiny-en-hf.yaml
llm: {repo}/configs/models/smollm2-135m-instruct.yaml
tts: {repo}/configs/models/piper-joe-medium.yaml
"""


def _dev(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.monotonic()
    result = subprocess.run(
        [str(REPO / "dev"), *command], env=env, cwd=REPO, capture_output=True, text=True
    )
    elapsed = time.monotonic() - t0
    if result.returncode != 0:
        sys.exit(f"`./dev {' '.join(command)}` failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout + result.stderr


def _first_time_steps(output: str, cache: Path) -> list[tuple[str, float]]:
    steps: list[tuple[str, float]] = []
    for tsv in cache.glob("venvs/*/first-time-steps.tsv"):
        for line in tsv.read_text().splitlines():
            name, _, seconds = line.partition("\t")
            steps.append((name, float(seconds)))
    for name, prepare, _start in _SERVICE_LINE.findall(output):
        if prepare:
            label = {"auth": "Supabase Auth build", "livekit": "LiveKit build"}.get(
                name, f"{name} prepare"
            )
            steps.append((label, float(prepare)))
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cold-go", action="store_true", help="empty Go module/build caches for the cold run"
    )
    args = parser.parse_args()

    scratch = REPO / ".local" / "bench"  # under .local so the postgres user can reach it
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    cache = Path(tempfile.mkdtemp(prefix="vwb-bench-cache-"))
    env = dict(os.environ, **PORTS, WORKBENCH_CACHE_DIR=str(cache))
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "WORKBENCH_VENV"):
        env.pop(name, None)  # `dev` makes its own environment
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(Path(sys.prefix)))
    )
    if args.cold_go:
        env.update(GOMODCACHE=str(cache / "gomod"), GOCACHE=str(cache / "gobuild"))
    rows: list[tuple[str, float]] = []
    steps: list[tuple[str, float]] = []
    try:
        env["WORKBENCH_LOCAL_DIR"] = str(scratch / "cold")
        seconds, output = _dev(["up"], env)
        rows.append(("cold", seconds))
        steps = _first_time_steps(output, cache)
        stack_file = scratch / "converted.yaml"
        stack_file.write_text(CONVERTED_STACK.format(repo=REPO))
        seconds, _ = _dev(["python", "-m", "workbench.models.prepare", str(stack_file)], env)
        steps.append(("model conversion (transformers specs)", seconds))
        _dev(["down"], env)
        env["WORKBENCH_LOCAL_DIR"] = str(scratch / "warm")
        rows.append(("warm", _dev(["up"], env)[0]))
        _dev(["down"], env)
        rows.append(("hot", _dev(["up"], env)[0]))
        rows.append(("running", _dev(["up"], env)[0]))
        _dev(["down"], env)
    finally:
        for local in ("cold", "warm"):
            env["WORKBENCH_LOCAL_DIR"] = str(scratch / local)
            subprocess.run([str(REPO / "dev"), "down"], env=env, cwd=REPO, capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(["chmod", "-R", "u+w", str(cache)], check=False)  # Go's read-only files
        shutil.rmtree(cache, ignore_errors=True)

    go = " (Go caches empty)" if args.cold_go else " (Go caches kept)"
    print(f"\n`./dev up` on {os.cpu_count()} cores{go}\n")
    print(f"| {'start':<8} | {'seconds':>8} |")
    print(f"|{'-' * 10}|{'-' * 10}|")
    for name, seconds in rows:
        print(f"| {name:<8} | {seconds:>8.1f} |")
    print("\nfirst-time steps of the cold start\n")
    print(f"| {'step':<40} | {'seconds':>8} |")
    print(f"|{'-' * 42}|{'-' * 10}|")
    for name, seconds in steps:
        print(f"| {name:<40} | {seconds:>8.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
