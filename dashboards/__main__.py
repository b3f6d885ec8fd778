"""`python -m dashboards`: the web server on loopback, port WORKBENCH_PANEL_PORT (5006)."""

from __future__ import annotations

from dashboards.app import serve
from workbench.config import get_settings


def main() -> None:
    """Serve until stopped."""
    serve(port=get_settings().panel_port)


if __name__ == "__main__":
    main()
