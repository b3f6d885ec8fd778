"""The system prompt used when no prompt is configured: one definition for the agent, evals and benches."""

from __future__ import annotations

# What the agent says to the LLM when the database has no active prompt for the
# conversation (a fresh database, an outage at the start); the latency eval and
# the voice bench use it too, so they measure the pipeline the agent runs.
# Plain on purpose: told it was a "voice assistant" that must "never use lists", the
# small default model (SmolLM2-135M) opened a reply with an apology or declined to help
# far more often (bench/reply_quality.py; bench/README.md, "Reply quality").
FALLBACK_SYSTEM_PROMPT = (
    "You are a helpful assistant. Keep every answer to one or two short sentences."
)
