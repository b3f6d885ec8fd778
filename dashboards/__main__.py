"""`python -m dashboards`: the web server on WORKBENCH_PANEL_ADDRESS (127.0.0.1), port WORKBENCH_PANEL_PORT (5006)."""

from __future__ import annotations

from dashboards.app import serve
from workbench.config import get_settings


def main() -> None:
    """Serve until stopped."""
    settings = get_settings()
    serve(port=settings.panel_port, address=settings.panel_address)


if __name__ == "__main__":
    main()
