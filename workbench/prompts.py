"""The system prompt used when no prompt is configured: one definition for the agent, evals and benches."""

from __future__ import annotations

# What the agent says to the LLM when the database has no active prompt for the
# conversation (a fresh database, an outage at the start); the latency eval and
# the voice bench use it too, so they measure the pipeline the agent runs.
FALLBACK_SYSTEM_PROMPT = (
    "You are a friendly voice assistant. Answer in one or two short spoken sentences. "
    "Never use lists, markdown or emoji."
)
