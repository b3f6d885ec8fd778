"""The Panel web server as a stack service: `python -m dashboards` on loopback."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from dashboards.components.web_bundle import BundleError, build_bundle
from stack.errors import StackError
from stack.layout import StackLayout
from stack.managed import BinaryService


class WebService(BinaryService):
    """The web app users open; healthy when its liveness endpoint answers."""

    name = "web"
    port_setting = "WORKBENCH_PANEL_PORT"
    health_path = "/liveness"
    start_timeout_s = 120.0

    def __init__(self, layout: StackLayout, *, port: int, metrics_port: int) -> None:
        super().__init__(layout, port=port)
        self.metrics_port = (
            metrics_port  # Prometheus metrics, loopback only (dashboards/metrics.py)
        )

    def tcp_ports(self) -> Mapping[int, str]:
        return {**super().tcp_ports(), self.metrics_port: "WORKBENCH_PANEL_METRICS_PORT"}

    def environment(self) -> dict[str, str]:
        env = self.python_environment()
        env["WORKBENCH_PANEL_METRICS_PORT"] = str(self.metrics_port)
        return env

    def prepare(self) -> None:
        """Build the browser bundle of the components once per version (cached); the server is Python."""
        try:
            build_bundle(self.layout.cache_dir, log_path=self.layout.logs_dir / "build-web.log")
        except BundleError as exc:
            raise StackError(f"web: {exc}") from None
        self._binary = Path(sys.executable)

    def command(self, binary: Path) -> list[str]:
        return [str(binary), "-m", "dashboards"]
