"""Soak: callers talking to one agent worker at once for a long while, printed as a table.

    ./dev bench bench/soak.py [--callers 4] [--minutes 30]

Needs the stack up (`./dev up`); uses its worker. Each caller (a researcher of its
own, in a room the web app opens) speaks the packaged recordings, waits for the
answer and for the agent to finish, and goes on until the time is up. Reported:
utterances spoken and answered, whether every one is a user turn in the database,
and heard voice-to-voice p50/p95 and the worker's memory (its job processes
included) in the first five minutes after a minute's warm-up against the last
five. Targets (issue 27): memory within 10 %, p95 within 20 %, nothing lost.
The short version runs in CI (`tests/integration/test_soak.py`, 4 callers, 3 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stack.instances import require_test_instance  # noqa: E402
from stack.services import LocalStack  # noqa: E402
from tests.support.live_stacks import wait_for_stack  # noqa: E402
from tests.support.soak import new_callers, soak, table, unstored_utterances  # noqa: E402
from workbench.config import get_settings  # noqa: E402
from workbench.db.connection import admin_database_url  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=30)
    args = parser.parse_args()
    settings = get_settings()
    require_test_instance(settings, "bench/soak.py")
    stack = LocalStack(settings)
    worker_pid = stack.agent.pid()
    if worker_pid is None:
        print("the stack's agent worker is not running: ./dev up first", file=sys.stderr)
        return 2
    assert settings.supabase_jwt_secret is not None
    admin_dsn = admin_database_url(settings)
    wait_for_stack(admin_dsn, settings.default_stack, idle=True, timeout_s=90)
    callers = new_callers(admin_dsn, settings.supabase_jwt_secret.get_secret_value(), args.callers)
    seconds = args.minutes * 60
    result = asyncio.run(soak(settings, callers, worker_pid=worker_pid, seconds=seconds))
    window = min(300.0, seconds / 3)
    print(table(result, window_s=window, warmup_s=min(60.0, seconds / 6)))
    missing = unstored_utterances(admin_dsn, callers)
    print(f"\nutterances not stored: {len(missing)}" + "".join(f"\n  {m}" for m in missing))
    print(f"worker still the same process: {stack.agent.pid() == worker_pid}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
