"""Prometheus (Debian's package) scraping the stack's metrics on loopback, with its alert rules.

Optional (`WORKBENCH_PROMETHEUS=1`): it scrapes every agent worker (`/metrics`
on the worker's port: livekit-agents' metrics and the workbench's,
agent/metrics.py), the web app's metrics port and LiveKit's, evaluates
`configs/prometheus/alerts.yml`, and keeps its data under `.local/prometheus`.
Alerts are read from its API (`/api/v1/alerts`); routing them to people is an
Alertmanager's job in production (README, "Metrics and alerts").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from stack.debian import ensure_debian_binary
from stack.layout import StackLayout
from stack.managed import BinaryService
from workbench.config import REPO_ROOT

PROMETHEUS_PACKAGE = "prometheus"
ALERT_RULES = REPO_ROOT / "configs" / "prometheus" / "alerts.yml"


def ensure_promtool(cache_dir: Path, *, log_path: Path | None = None) -> Path:
    """Prometheus' rule checker and tester, from the same package."""
    return ensure_debian_binary(
        PROMETHEUS_PACKAGE, "usr/bin/promtool", cache_dir=cache_dir, log_path=log_path
    )


def prometheus_config(
    targets: Mapping[str, Sequence[str]], *, rules: Path, interval_s: float
) -> dict[str, object]:
    """A config scraping `targets` (job -> host:port list) every `interval_s`, with `rules`."""
    every = f"{interval_s:g}s"
    return {
        "global": {"scrape_interval": every, "evaluation_interval": every},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(addresses)}]}
            for job, addresses in targets.items()
            if addresses
        ],
    }


class PrometheusService(BinaryService):
    """Prometheus on 127.0.0.1:`port`; healthy when `/-/ready` answers."""

    name = "prometheus"
    port_setting = "WORKBENCH_PROMETHEUS_PORT"
    health_path = "/-/ready"

    def __init__(
        self,
        layout: StackLayout,
        *,
        port: int,
        targets: Mapping[str, Sequence[str]],
        rules: Path = ALERT_RULES,
        interval_s: float = 5.0,
        name: str = "prometheus",
    ) -> None:
        self.name = name  # its pidfile, log, config and data folder
        super().__init__(layout, port=port)
        self.targets, self.rules, self.interval_s = targets, rules, interval_s
        self.config_path = layout.run_dir / f"{name}.yml"
        self.data_dir = layout.local_dir / name

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        self._binary = ensure_debian_binary(
            PROMETHEUS_PACKAGE,
            "usr/bin/prometheus",
            cache_dir=self.layout.cache_dir,
            log_path=self.layout.logs_dir / "build-prometheus.log",
        )

    def command(self, binary: Path) -> list[str]:
        config = prometheus_config(self.targets, rules=self.rules, interval_s=self.interval_s)
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        return [
            str(binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=15d",
        ]
