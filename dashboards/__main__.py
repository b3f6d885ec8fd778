"""`python -m dashboards`: the web server on WORKBENCH_PANEL_ADDRESS (127.0.0.1), port WORKBENCH_PANEL_PORT (5006)."""

from __future__ import annotations

import sys

from dashboards.app import serve
from workbench.config import get_settings
from workbench.db.connection import PrivilegedConnectionError, database_url, refuse_privileged


def main() -> int:
    """Serve until stopped."""
    settings = get_settings()
    try:
        refuse_privileged(database_url(settings))
    except PrivilegedConnectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(port=settings.panel_port, address=settings.panel_address)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
