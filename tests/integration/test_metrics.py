"""Prometheus metrics and alerts over the real stack: Debian's Prometheus scrapes the agent
worker, the web app and LiveKit on loopback; the alert rules are tested with promtool, and
one fires on purpose when the worker stops."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from stack.prometheus import ALERT_RULES, PrometheusService, ensure_promtool
from stack.services import LocalStack
from tests.support.personas import Persona, create_user
from tests.support.ports import free_port
from workbench.config import Settings
from workbench.voice_client import join_as_web_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def prometheus(stack: LocalStack, settings: Settings) -> Iterator[PrometheusService]:
    """A Prometheus of this test's own (scraping every second) over the stack's services."""
    service = PrometheusService(
        stack.layout,
        port=free_port(),
        targets={
            "agent": [f"127.0.0.1:{agent.port}" for agent in stack.agents],
            "web": [f"127.0.0.1:{settings.panel_metrics_port}"],
            "livekit": [f"127.0.0.1:{settings.livekit_metrics_port}"],
        },
        interval_s=1.0,
        name="prometheus-test",  # beside a Prometheus the stack may run
    )
    service.prepare()
    service.start()
    yield service
    service.stop()


def _api(prometheus: PrometheusService, path: str, **params: Any) -> Any:
    answer = httpx.get(f"{prometheus.url}/api/v1/{path}", params=params, timeout=10)
    answer.raise_for_status()
    return answer.json()["data"]


def _until(check: Any, what: str, timeout_s: float = 45) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.5)
    return found


def test_the_alert_rules_fire_on_what_they_watch(settings: Settings) -> None:
    """Each rule fires on the series that should fire it, after its `for`, and not otherwise
    (configs/prometheus/alerts_test.yml, run by Prometheus' own rule tester)."""
    promtool = ensure_promtool(settings.cache_dir)
    tested = subprocess.run(
        [str(promtool), "test", "rules", "alerts_test.yml"],
        cwd=ALERT_RULES.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


async def test_every_service_is_scraped_and_turns_are_counted(
    prometheus: PrometheusService, settings: Settings, admin_dsn: str, jwt_secret: str
) -> None:
    def all_up() -> bool:
        targets = _api(prometheus, "targets")["activeTargets"]
        health = {(t["labels"]["job"], t["health"]) for t in targets}
        return {("agent", "up"), ("web", "up"), ("livekit", "up")} <= health

    await asyncio.to_thread(_until, all_up, "not every service was scraped")
    # A greeting is an agent turn: counted by the job process, scraped from the worker.
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        user: Persona = create_user(conn, name="metrics", role="user", jwt_secret=jwt_secret)
    assert user.id is not None
    before = _value(prometheus, 'sum(workbench_agent_turns_total{role="agent"})')
    await _greeted_once(settings, user.id)

    def counted() -> bool:
        return _value(prometheus, 'sum(workbench_agent_turns_total{role="agent"})') > before

    await asyncio.to_thread(_until, counted, "the greeting was not counted")
    assert _value(prometheus, f'workbench_agent_ready{{stack="{settings.default_stack}"}}') == 1
    assert _value(prometheus, "sum(workbench_web_requests_total)") > 0
    assert _value(prometheus, "sum(lk_agents_child_process_count)") >= 1  # livekit-agents' own


def test_an_alert_fires_when_the_worker_stops(
    prometheus: PrometheusService, stack: LocalStack
) -> None:
    """NoWorkerReady goes pending at once (and would fire after its minute) on purpose."""

    def alert() -> list[dict[str, Any]]:
        return [
            a
            for a in _api(prometheus, "alerts")["alerts"]
            if a["labels"]["alertname"] == "NoWorkerReady"
        ]

    assert alert() == []
    stack.agent.stop()
    try:
        raised = _until(alert, "NoWorkerReady did not go off with the worker stopped")
        assert raised[0]["state"] in ("pending", "firing")
    finally:
        stack.up()
    _until(lambda: not alert(), "NoWorkerReady stayed on with the worker back")


def _value(prometheus: PrometheusService, query: str) -> float:
    result = _api(prometheus, "query", query=query)["result"]
    return float(result[0]["value"][1]) if result else 0.0


async def _greeted_once(settings: Settings, user_id: UUID) -> None:
    voice = await join_as_web_app(settings, user_id)
    try:
        assert await voice.wait_for_agent_audio(time.monotonic(), timeout_s=60) is not None
        await voice.silence(3.0)
    finally:
        await voice.close()
