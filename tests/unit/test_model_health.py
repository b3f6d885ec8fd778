"""The worker's model health: ready only after a warm-up, failures counted with their reason, a give-up."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from agent.model_health import ModelHealth, describe_exit

pytestmark = pytest.mark.unit


def test_a_process_that_dies_while_loading_is_a_failure_with_its_signal(tmp_path: Path) -> None:
    health = ModelHealth(status_file=tmp_path / "models.json")
    assert health.state == "loading"
    health.process_closed(101, -signal.SIGSEGV, killed=False, shutting_down=False)
    assert health.state == "failed"
    assert "before its models loaded (killed by SIGSEGV)" in health.reason
    written = json.loads((tmp_path / "models.json").read_text())
    assert written["state"] == "failed"
    assert written["reason"] == health.reason


def test_repeated_failures_give_up_once_and_say_so(tmp_path: Path) -> None:
    reasons: list[str] = []
    health = ModelHealth(status_file=tmp_path / "m.json", max_failures=3, on_give_up=reasons.append)
    for pid in (1, 2, 3, 4):
        # The pool kills a process whose set-up raised: still a failure.
        health.process_closed(pid, -signal.SIGKILL, killed=pid % 2 == 0, shutting_down=False)
    assert health.state == "gave_up"
    assert len(reasons) == 1
    assert "stopped restarting job processes after 3" in reasons[0]


def test_ready_resets_the_count_and_a_clean_end_is_no_failure(tmp_path: Path) -> None:
    health = ModelHealth(status_file=None)
    health.process_closed(1, 1, killed=False, shutting_down=False)
    health.process_ready(2)
    assert health.state == "ready"
    assert health.consecutive_failures == 0
    health.process_closed(2, 0, killed=False, shutting_down=False)  # its room ended
    health.process_closed(3, -signal.SIGTERM, killed=True, shutting_down=True)  # worker stopping
    assert health.state == "ready"


def test_a_ready_process_that_crashes_later_counts(tmp_path: Path) -> None:
    health = ModelHealth(status_file=None)
    health.process_ready(7)
    health.process_closed(7, -signal.SIGSEGV, killed=False, shutting_down=False)
    assert health.state == "failed"
    assert "after loading its models (killed by SIGSEGV)" in health.reason


async def test_the_models_endpoint_answers_503_until_ready_and_registered() -> None:
    health = ModelHealth(status_file=None)
    response = await health.handle(None)  # type: ignore[arg-type]
    assert response.status == 503
    health.process_ready(9)
    response = await health.handle(None)  # type: ignore[arg-type]
    assert response.status == 503  # models answer, but LiveKit cannot dispatch to it yet
    health.worker_registered()
    response = await health.handle(None)  # type: ignore[arg-type]
    assert response.status == 200
    snapshot = json.loads(response.text or "")
    assert snapshot["processes_ready"] == 1
    assert snapshot["registered"] is True


def test_exit_descriptions() -> None:
    assert describe_exit(None) == "no exit code"
    assert describe_exit(2) == "exit code 2"
    assert describe_exit(-11) == "killed by SIGSEGV"


def test_the_heartbeat_says_ready_only_once_livekit_can_dispatch_and_beats_on_change() -> None:
    from agent.heartbeat import Heartbeat
    from workbench.models.stack import load_stack, stack_file

    def no_database() -> Any:
        raise AssertionError("beat() must not touch the database")

    health = ModelHealth(status_file=None)
    heartbeat = Heartbeat(
        connect=no_database,
        stack=load_stack(stack_file("cpu-hf")),
        agent_name="lab-cpu-hf",
        health=health,
        rooms=lambda: 1,
        max_rooms=4,
    )
    assert heartbeat.beat().state == "loading"
    health.process_ready(7)
    assert heartbeat._wake.is_set()  # a state change beats at once, not at the next interval
    assert heartbeat.beat().state == "loading"  # models ready, but not registered with LiveKit
    health.worker_registered()
    beat = heartbeat.beat()
    assert (beat.state, beat.stack, beat.agent_name, beat.rooms) == (
        "ready",
        "cpu-hf",
        "lab-cpu-hf",
        1,
    )
    assert beat.spec["stt"]["backend"] == "transformers"
    assert beat.memory_mb is not None
    assert beat.memory_mb > 10  # this test process, at least
    health.process_closed(7, -signal.SIGKILL, killed=False, shutting_down=False)
    assert heartbeat.beat().state == "failed"
    assert "after loading its models" in heartbeat.beat().reason
