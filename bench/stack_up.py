"""Time `workbench stack up` from cold, warm and hot starts; print a table.

- cold: empty artefact cache and empty `.local/` (Go services built, cluster
  initialised). With --cold-go the Go module and build caches are empty too,
  as on a fresh machine; otherwise Go reuses its own caches.
- warm: artefacts cached, `.local/` empty (what CI's fresh clone sees).
- hot: artefacts cached, cluster exists, services stopped (a developer's `up`).
- running: everything already up (idempotent `up`).

Runs on its own ports and folders, so a developer's running stack is untouched.
"""

from __future__ import annotations

import argparse
import os
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
    "WORKBENCH_PANEL_PORT": "15006",
}


def _stack(command: str, env: dict[str, str]) -> float:
    t0 = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "stack", command],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - t0
    if result.returncode != 0:
        sys.exit(f"`stack {command}` failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


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
    env = dict(os.environ, **PORTS, WORKBENCH_CACHE_DIR=str(cache), PYTHONPATH=str(REPO))
    if args.cold_go:
        env.update(GOMODCACHE=str(cache / "gomod"), GOCACHE=str(cache / "gobuild"))
    rows = []
    try:
        env["WORKBENCH_LOCAL_DIR"] = str(scratch / "cold")
        rows.append(("cold", _stack("up", env)))
        _stack("down", env)
        env["WORKBENCH_LOCAL_DIR"] = str(scratch / "warm")
        rows.append(("warm", _stack("up", env)))
        _stack("down", env)
        rows.append(("hot", _stack("up", env)))
        rows.append(("running", _stack("up", env)))
        _stack("down", env)
    finally:
        for local in ("cold", "warm"):
            env["WORKBENCH_LOCAL_DIR"] = str(scratch / local)
            subprocess.run(
                [sys.executable, "-m", "workbench", "stack", "down"],
                env=env,
                cwd=REPO,
                capture_output=True,
            )
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(
            ["chmod", "-R", "u+w", str(cache)], check=False
        )  # Go makes module files read-only
        shutil.rmtree(cache, ignore_errors=True)

    print(
        f"\n`workbench stack up` on {os.cpu_count()} cores{' (Go caches empty)' if args.cold_go else ''}\n"
    )
    print(f"| {'start':<8} | {'seconds':>8} |")
    print(f"|{'-' * 10}|{'-' * 10}|")
    for name, seconds in rows:
        print(f"| {name:<8} | {seconds:>8.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
