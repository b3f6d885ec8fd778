"""The web app's Prometheus metrics, on their own loopback port (`WORKBENCH_PANEL_METRICS_PORT`).

Requests are counted by handler and status class as Tornado logs them (so every
page, form, file and websocket request is seen, and none is counted twice),
with their duration; live sessions and rooms waiting for a free agent are read
when scraped. The port is bound to 127.0.0.1 only: behind the TLS proxy the
public origin never serves metrics.
"""

from __future__ import annotations

import logging
from typing import Any

import panel as pn
from prometheus_client import Counter, Gauge, Histogram, start_http_server

access_log = logging.getLogger("tornado.access")

REQUESTS = Counter(
    "workbench_web_requests", "HTTP requests by handler and status class.", ["handler", "code"]
)
REQUEST_SECONDS = Histogram(
    "workbench_web_request_seconds",
    "Time to answer an HTTP request, by handler.",
    ["handler"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SESSIONS = Gauge("workbench_web_sessions", "Browser sessions (open pages) the server holds.")
ROOMS_QUEUED = Gauge(
    "workbench_web_rooms_queued", "Conversations waiting for a free agent (every worker full)."
)


def record_request(handler: Any) -> None:
    """Tornado's `log_function`: count and time the request, then log it as Tornado would."""
    status = int(handler.get_status())
    name = type(handler).__name__
    seconds = handler.request.request_time()
    REQUESTS.labels(name, f"{status // 100}xx").inc()
    REQUEST_SECONDS.labels(name).observe(seconds)
    log = (
        access_log.info
        if status < 400
        else access_log.warning
        if status < 500
        else access_log.error
    )
    log("%d %s %.2fms", status, handler._request_summary(), 1000.0 * seconds)


def serve_metrics(port: int) -> None:
    """Serve /metrics on 127.0.0.1:`port` from a background thread."""
    SESSIONS.set_function(lambda: pn.state.session_info["live"])
    start_http_server(port, addr="127.0.0.1")
