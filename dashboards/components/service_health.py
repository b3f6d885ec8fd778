"""The service now, as Analytics shows it: each stack's workers and the alerts firing."""

from __future__ import annotations

from typing import Any

import httpx

from dashboards.text import markdown_text
from workbench.config import Settings
from workbench.db.models import LiveStack


async def service_alerts(settings: Settings) -> list[dict[str, Any]]:
    """Alerts pending or firing in the local Prometheus (WORKBENCH_PROMETHEUS=1); none without."""
    if not settings.prometheus:
        return []
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            answer = await client.get(f"http://127.0.0.1:{settings.prometheus_port}/api/v1/alerts")
            answer.raise_for_status()
    except httpx.HTTPError:
        return [{"labels": {"alertname": "PrometheusUnreachable"}, "state": "firing"}]
    alerts: list[dict[str, Any]] = answer.json()["data"]["alerts"]
    return alerts


def health_markdown(health: list[LiveStack], alerts: list[dict[str, Any]]) -> str:
    """The service now: each stack's ready workers, rooms held of their slots, memory, problems;
    then the alerts."""
    if not health:
        lines = ["**No agent worker is running**: conversations cannot start (`./dev up`)."]
    else:
        lines = ["| stack | workers ready | rooms | memory | problems |", "|---|---|---|---|---|"]
        for s in health:
            memory = f"{s.worker_memory_mb / 1024:.1f} GB" if s.worker_memory_mb else "—"
            problems = markdown_text(s.problems or "") or "—"
            lines.append(
                f"| {s.stack} | {s.workers} | {s.rooms} / {s.max_rooms} | {memory} | {problems} |"
            )
    for alert in alerts:
        name = markdown_text(str(alert["labels"].get("alertname", "?")))
        summary = markdown_text(str((alert.get("annotations") or {}).get("summary", "")))
        lines.append(f"\n⚠ **{name}** ({alert.get('state', '?')}) {summary}".rstrip())
    return "\n".join(lines)
