"""livekit-agents' messages and metrics → the turn rows the agent records."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from livekit.agents import llm

from agent.settings import AgentSettings
from agent.turn_records import turn_draft
from workbench.content_filter import ContentPolicy

pytestmark = pytest.mark.unit
CONVERSATION = uuid.uuid4()
POLICY = ContentPolicy(blocklist=["darn"])


def test_a_user_message_keeps_its_delays_and_the_verdict_the_agent_acted_on() -> None:
    item = llm.ChatMessage(
        role="user",
        content=["move my dentist to Thursday"],
        created_at=1000.0,
        metrics={
            "started_speaking_at": 1000.5,
            "stopped_speaking_at": 1002.0,
            "end_of_turn_delay": 0.42,
            "transcription_delay": 0.11,
        },
        extra={"filter_verdict": {"action": "allow", "matched": []}},
    )
    draft = turn_draft(
        item,
        conversation_id=CONVERSATION,
        idx=3,
        policy=POLICY,
        false_interruption=True,
        now=1010.0,
    )
    assert (draft.role, draft.idx, draft.text) == ("user", 3, "move my dentist to Thursday")
    assert (draft.eou_delay_s, draft.stt_s) == (0.42, 0.11)
    assert draft.started_at.timestamp() == 1000.5
    assert draft.ended_at.timestamp() == 1002.0
    assert draft.filter_verdict == {"action": "allow", "matched": []}
    assert not draft.false_interruption  # a user turn never carries it


def test_an_agent_message_maps_llm_tts_and_end_to_end_latency() -> None:
    item = llm.ChatMessage(
        role="assistant",
        content=["Darn, Thursday it is."],
        created_at=2000.0,
        interrupted=True,
        metrics={"llm_node_ttft": 0.08, "tts_node_ttfb": 0.05, "e2e_latency": 0.9},
    )
    draft = turn_draft(
        item,
        conversation_id=CONVERSATION,
        idx=4,
        policy=POLICY,
        false_interruption=True,
        now=2003.0,
    )
    assert draft.role == "agent"
    assert (draft.llm_ttft_s, draft.tts_ttfb_s, draft.v2v_s) == (0.08, 0.05, 0.9)
    assert draft.interrupted
    assert draft.false_interruption
    assert draft.filter_verdict is not None
    assert draft.filter_verdict["action"] != "allow"  # the blocklisted word is judged
    # No speaking times: it started when it was created and ended by `now`.
    assert draft.started_at.timestamp() == 2000.0
    assert draft.ended_at.timestamp() == 2003.0


def test_an_end_before_the_start_is_clamped_and_other_roles_are_refused() -> None:
    item = llm.ChatMessage(
        role="user",
        content=["hi"],
        created_at=10.0,
        metrics={"started_speaking_at": 12.0, "stopped_speaking_at": 11.0},
    )
    draft = turn_draft(
        item, conversation_id=CONVERSATION, idx=0, policy=POLICY, false_interruption=False, now=20.0
    )
    assert draft.ended_at == draft.started_at
    system = llm.ChatMessage(role="system", content=["be brief"])
    with pytest.raises(ValueError, match="only user and assistant"):
        turn_draft(
            system,
            conversation_id=CONVERSATION,
            idx=1,
            policy=POLICY,
            false_interruption=False,
            now=1.0,
        )


def test_agent_settings_come_from_the_environment_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_AGENT_BLOCKLIST", "darn, heck ,")
    monkeypatch.setenv("WORKBENCH_AGENT_PREEMPTIVE", "0")
    monkeypatch.setenv("WORKBENCH_AGENT_MAX_JOBS", "2")
    knobs = AgentSettings(_env_file=None)
    assert knobs.blocked_words == ["darn", "heck"]
    assert knobs.preemptive is False
    assert knobs.max_jobs == 2
    monkeypatch.setenv("WORKBENCH_AGENT_MAX_JOBS", "0")
    with pytest.raises(ValueError, match="max_jobs"):
        AgentSettings(_env_file=None)
