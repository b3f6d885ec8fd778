"""`python -m stack up|down|status|logs|reset` (`./dev up` ...): the local stack from a terminal."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from stack.errors import StackError
from stack.local_accounts import ACCOUNTS_FILE
from stack.services import LocalStack, ServiceReport
from workbench.config import SettingsError, get_settings
from workbench.db.migrations import MigrationError

SERVICES = (
    "postgres",
    "mail",
    "auth",
    "redis",
    "livekit",
    "agent",
    "web",
    "tls-proxy",
    "prometheus",
)


def _print_reports(reports: list[ServiceReport]) -> None:
    for report in reports:
        pid = f"pid {report.pid}" if report.pid else ""
        line = f"  {report.name:<16} {report.state:<11} {report.url:<42} {pid}"
        print(line.rstrip())
        if report.detail:
            print(f"{'':<19}{report.detail}")


def cmd_up(stack: LocalStack, _: argparse.Namespace) -> int:
    t0 = time.monotonic()
    reports = stack.up()
    print(f"stack up in {time.monotonic() - t0:.1f} s:")
    _print_reports(reports)
    bad = [r for r in reports if r.state != "running"]
    if bad:
        print("not ready: " + ", ".join(r.name for r in bad) + " (see `./dev logs <service>`)")
        return 1
    if stack.accounts_made:
        path = stack.layout.local_dir / ACCOUNTS_FILE
        print(
            f"\nlocal accounts (made once for this database; passwords also in {path}, mode 0600):"
        )
        for account in stack.accounts_made:
            print(f"  {account.role:<11} {account.email:<28} password {account.password}")
        print("  or create your own account on the sign-in page (Create an account).")
    if stack.tls_proxy is not None and stack.tls_proxy.tls.ca is not None:
        print(
            f"\nHTTPS with a local CA: trust {stack.tls_proxy.tls.ca} once in the browser "
            "(or OS) of each machine that opens the workbench."
        )
    print(f"\nready: open {stack.public_url}")
    return 0


def cmd_down(stack: LocalStack, _: argparse.Namespace) -> int:
    stopped = stack.down()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def cmd_status(stack: LocalStack, _: argparse.Namespace) -> int:
    reports = stack.status()
    _print_reports(reports)
    return 0 if all(r.state == "running" for r in reports) else 3


def cmd_logs(stack: LocalStack, args: argparse.Namespace) -> int:
    names = [args.service] if args.service else list(SERVICES)
    logs = stack.layout.logs_dir
    # "agent" is every worker's log (agent-<stack>[-<n>].log), "livekit" every node's.
    existing = [
        p
        for name in names
        for p in [*sorted(logs.glob(f"{name}.log")), *sorted(logs.glob(f"{name}-*.log"))]
    ]
    if not existing:
        print(f"no logs yet under {stack.layout.logs_dir}")
        return 1
    if args.follow:
        return subprocess.call(["tail", "-n", str(args.lines), "-F", *map(str, existing)])
    for path in existing:
        print(f"==> {path} <==")
        print("\n".join(path.read_text(errors="replace").splitlines()[-args.lines :]))
    return 0


def cmd_reset(stack: LocalStack, args: argparse.Namespace) -> int:
    if args.service != "postgres":
        print("only `reset postgres` exists: other services keep no data")
        return 2
    if stack.postgres.running():
        print("postgres is running: `./dev down` first")
        return 1
    target = stack.postgres.data_dir
    if not target.exists():
        print(f"nothing to reset: {target} does not exist")
        return 0
    if not args.yes:
        answer = input(f"delete {target} and every row in it? type 'delete' to confirm: ")
        if answer.strip() != "delete":
            print("kept")
            return 1
    shutil.rmtree(target)
    print(f"deleted {target}; the next `up` creates a fresh cluster")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="./dev", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start every service (idempotent)")
    up.add_argument(
        "--tls",
        metavar="HOSTNAME",
        help="serve over HTTPS as HOSTNAME (as WORKBENCH_TLS_HOST; put it in .env to keep it)",
    )
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop the processes the stack started").set_defaults(func=cmd_down)
    sub.add_parser("status", help="state of each service").set_defaults(func=cmd_status)
    logs = sub.add_parser("logs", help="show service logs")
    logs.add_argument("service", nargs="?", choices=SERVICES)
    logs.add_argument("-n", "--lines", type=int, default=40)
    logs.add_argument("-f", "--follow", action="store_true")
    logs.set_defaults(func=cmd_logs)
    reset = sub.add_parser("reset", help="delete a service's data (asks first)")
    reset.add_argument("service", choices=("postgres",))
    reset.add_argument("--yes", action="store_true", help="do not ask")
    reset.set_defaults(func=cmd_reset)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the stack CLI; errors print one clear line (plus log lines) and exit non-zero."""
    args = build_parser().parse_args(argv)
    if getattr(args, "tls", None):
        # Through the environment: the services this `up` starts read it too.
        os.environ["WORKBENCH_TLS_HOST"] = args.tls
        get_settings.cache_clear()
    try:
        stack = LocalStack(get_settings())
        return int(args.func(stack, args))
    except (StackError, SettingsError, MigrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
