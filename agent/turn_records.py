"""What a finished conversation item becomes in the database: livekit-agents' metrics → `TurnDraft`.

livekit-agents attaches per-message metrics (`item.metrics`): for the user the
end-of-turn and transcription delays, for the agent the LLM's time to first
token, the TTS's time to first byte and the end-to-end latency. The agent's
turn also says whether the user interrupted it; a "false interruption" (the
agent stopped, then resumed) is counted since the previous agent turn.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from livekit.agents import llm

from workbench.content_filter import ContentPolicy
from workbench.db.models import TurnDraft


def _timestamp(value: float | None, fallback: float) -> datetime:
    return datetime.fromtimestamp(value if value else fallback, tz=UTC)


def turn_draft(
    item: llm.ChatMessage,
    *,
    conversation_id: UUID,
    idx: int,
    policy: ContentPolicy,
    false_interruption: bool,
    now: float,
    agent_ordinal: int | None = None,
) -> TurnDraft:
    """The turn row for a user or assistant message that has just been added to the conversation.

    `agent_ordinal` (for an assistant message) is its place among the agent's turns,
    0 for the greeting: the browser reports the latency it heard by that number.
    """
    metrics: dict[str, Any] = dict(item.metrics)
    started = _timestamp(metrics.get("started_speaking_at"), item.created_at)
    ended = max(started, _timestamp(metrics.get("stopped_speaking_at"), now))
    text = item.text_content or ""
    common: dict[str, Any] = {
        "conversation_id": conversation_id,
        "idx": idx,
        "text": text,
        "started_at": started,
        "ended_at": ended,
    }
    if item.role == "user":
        return TurnDraft(
            **common,
            role="user",
            eou_delay_s=metrics.get("end_of_turn_delay"),
            stt_s=metrics.get("transcription_delay"),
            # the verdict the agent acted on, else one made now
            filter_verdict=item.extra.get("filter_verdict") or policy.check(text),
        )
    if item.role == "assistant":
        return TurnDraft(
            **common,
            role="agent",
            llm_ttft_s=metrics.get("llm_node_ttft"),
            tts_ttfb_s=metrics.get("tts_node_ttfb"),
            v2v_s=metrics.get("e2e_latency"),
            interrupted=bool(item.interrupted),
            false_interruption=false_interruption,
            filter_verdict=policy.check(text),
            agent_ordinal=agent_ordinal,
        )
    raise ValueError(f"only user and assistant messages are turns, not {item.role!r}")
