"""The agent's Prometheus metrics, served with livekit-agents' own at `/metrics` on the worker's port.

The worker runs prometheus_client in multiprocess mode (a directory per worker,
`WORKBENCH_AGENT_METRICS_DIR`, which livekit-agents empties at start): turns and
their stage latencies are counted in the job processes that record them, model
health and rooms in the worker process, and one scrape of the worker returns
them all. Children are made on first use (`.labels`), after the directory was
emptied; a metric made before would write to a file already deleted.

Names follow Prometheus conventions (`_seconds`, `_total`); every series carries
the model stack, so alerts and dashboards split by it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from workbench.latency_stages import STAGES

# Voice-to-voice on CPU stacks runs 0.5-4 s; the buckets resolve the 1-2 s range.
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 10.0)

TURNS = Counter("workbench_agent_turns", "Turns recorded, by side.", ["stack", "role"])
STAGE_SECONDS = Histogram(
    "workbench_agent_stage_seconds",
    "Per-turn latency of each stage as the agent measured it.",
    ["stack", "stage"],
    buckets=LATENCY_BUCKETS,
)
JOB_FAILURES = Counter(
    "workbench_agent_job_failures",
    "Job processes that ended before their models loaded, or crashed after.",
    ["stack"],
)
DATABASE_ERRORS = Counter(
    "workbench_agent_database_errors",
    "Attempts to store a conversation that failed on the database or the store (the journal keeps it).",
    ["stack"],
)
READY = Gauge(
    "workbench_agent_ready",
    "1 while the worker's models answer and it is registered with LiveKit.",
    ["stack"],
    multiprocess_mode="livemax",
)
ROOMS = Gauge(
    "workbench_agent_rooms",
    "Rooms the worker holds, and the most it takes.",
    ["stack", "kind"],
    multiprocess_mode="livemax",
)


def observe_turn(stack: str, role: str, stages: dict[str, float | None]) -> None:
    """Count a recorded turn and observe each stage latency it has."""
    TURNS.labels(stack, role).inc()
    for stage in STAGES:
        value = stages.get(stage.field)
        if stage.metric is not None and value is not None and value >= 0:
            STAGE_SECONDS.labels(stack, stage.metric).observe(value)
