"""`python -m stack up|down|status|logs|reset` (what `./dev` runs): the local stack."""

from __future__ import annotations

from stack.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
