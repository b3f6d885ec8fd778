"""`python -m agent`: recover crashed conversations, then run the worker against the configured LiveKit."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

from livekit.agents.__main__ import main as livekit_main

from workbench.config import get_settings
from workbench.db.connection import PrivilegedConnectionError, database_url, refuse_privileged


def main() -> int:
    """Start the worker (blocking)."""
    settings = get_settings()
    if not (settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret):
        print(
            "error: LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET are needed (./dev up sets them locally)",
            file=sys.stderr,
        )
        return 1
    try:
        refuse_privileged(database_url(settings))
    except PrivilegedConnectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Through the environment, not argv: secrets stay out of `ps`, and a value
    # starting with "-" cannot be mistaken for an option. Set before agent.worker
    # is imported: its AgentServer reads them when it is built.
    os.environ["LIVEKIT_URL"] = settings.livekit_url
    os.environ["LIVEKIT_API_KEY"] = settings.livekit_api_key
    os.environ["LIVEKIT_API_SECRET"] = settings.livekit_api_secret.get_secret_value()
    from agent.conversation import recover
    from agent.worker import start_heartbeat, start_recovery_thread

    recovered = asyncio.run(recover())
    if recovered:
        logging.getLogger("workbench.agent").info(
            "stored %d conversation(s) left by a crashed worker", recovered
        )
    start_recovery_thread()  # and those of jobs that crash while this worker runs
    heartbeat = start_heartbeat()  # the web app offers this worker's stack while it beats
    try:
        # A worker whose models fail to load leaves with status 3 (agent/model_health.py).
        return livekit_main(
            ["start", str(Path(__file__).with_name("worker.py")), "--log-format", "colored"]
        )
    finally:
        heartbeat.stop()


if __name__ == "__main__":
    raise SystemExit(main())
