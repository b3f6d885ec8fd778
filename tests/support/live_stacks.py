"""Waiting on the workers' heartbeats (`public.live_stacks`), as the web app sees them."""

from __future__ import annotations

import time

import psycopg


def wait_for_stack(
    admin_dsn: str, stack: str, *, idle: bool = False, timeout_s: float = 60
) -> None:
    """Until a worker of `stack` offers it (and, `idle`, its workers hold no room).

    A worker just started announces itself a few seconds after it is ready, and one
    that lost the database some seconds after it is back; rooms other tests opened and
    left hold a slot until the agent's join timeout.
    """
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "select workers, rooms from public.live_stacks where stack = %s", [stack]
            ).fetchone()
            if row is not None and row[0] > 0 and (not idle or row[1] == 0):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {stack} workers (ready, rooms): {row}")
            time.sleep(0.5)
