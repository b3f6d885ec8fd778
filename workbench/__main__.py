"""`python -m workbench <area> ...`: command-line entry point."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch to an area's CLI (`stack` for now)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("stack",):
        print("usage: workbench stack {up,down,status,logs,reset} ...", file=sys.stderr)
        return 2
    from workbench.stack.cli import main as stack_main

    return stack_main(args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
