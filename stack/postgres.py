"""The local PostgreSQL cluster under `.local/postgres`, on 127.0.0.1 only.

Postgres refuses to run as root, so when the stack runs as root the cluster
is owned and run by the Debian `postgres` user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import psycopg

from stack.errors import StackError
from stack.layout import StackLayout
from stack.local_accounts import LocalAccount, ensure_local_accounts
from stack.processes import ensure_ports_free, log_excerpt, wait_until
from workbench.db.migrations import apply_bootstrap, apply_migrations, apply_seed

PREFERRED_MAJOR = "15"  # Supabase's Postgres line packaged by Debian 12
_INCLUDE_LINE = "include_if_exists = 'workbench.conf'\n"


def _find_bin_dir() -> Path | None:
    override = os.environ.get("WORKBENCH_PG_BIN")
    if override:
        return Path(override)
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    preferred = [c for c in candidates if c.parts[-3] == PREFERRED_MAJOR]
    chosen = preferred or candidates[-1:]
    return chosen[0].parent if chosen else None


def _install_postgres() -> None:
    if os.geteuid() != 0:
        raise StackError(
            "PostgreSQL server is not installed: run `sudo apt-get install -y postgresql`, "
            "or set WORKBENCH_PG_BIN to the folder holding initdb and pg_ctl"
        )
    if shutil.which("apt-get") is None:
        raise StackError(
            "PostgreSQL server is not installed and apt-get is missing: install PostgreSQL 15"
        )
    print("installing Debian package postgresql (once) ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]
    if subprocess.run(install, env=env, check=False, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=False, capture_output=True)
        result = subprocess.run(install, env=env, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            raise StackError("`apt-get install postgresql` failed:\n" + result.stderr[-2000:])


class PostgresService:
    """Owns one cluster: install, init, start, bootstrap, migrate, stop."""

    name = "postgres"

    def __init__(self, layout: StackLayout, *, port: int, password: str) -> None:
        self.layout = layout
        self.port = port
        self._password = password
        self.data_dir = layout.local_dir / "postgres"
        self.log_path = layout.logs_dir / "postgres.log"
        self._bin: Path | None = None

    @property
    def dsn(self) -> str:
        """Superuser connection string (service code only)."""
        return f"postgresql://postgres:{self._password}@127.0.0.1:{self.port}/postgres"

    # -- artefacts ---------------------------------------------------------
    def prepare(self) -> None:
        """Install the server if missing and create the cluster once."""
        self._bin = _find_bin_dir()
        if self._bin is None:
            _install_postgres()
            self._bin = _find_bin_dir()
            if self._bin is None:
                raise StackError(
                    "PostgreSQL installed but initdb not found under /usr/lib/postgresql"
                )
        self._check_data_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._init_cluster()

    def _run_as_owner(
        self, command: list[str], **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=False, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]

    def _chown_to_owner(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")

    def _check_data_dir(self) -> None:
        data = self.data_dir
        if data.exists() and any(data.iterdir()) and not (data / "PG_VERSION").exists():
            raise StackError(
                f"{data} is not empty but holds no complete cluster (no PG_VERSION): it is not the "
                f"stack's; move it aside (or `./dev reset postgres` to delete it) and rerun"
            )
        version_file = data / "PG_VERSION"
        if version_file.exists() and self._bin is not None:
            cluster_major = version_file.read_text().strip()
            bin_major = self._bin.parts[-2]
            if bin_major.isdigit() and cluster_major != bin_major:
                raise StackError(
                    f"{data} was made by PostgreSQL {cluster_major} but {self._bin} is {bin_major}; "
                    f"set WORKBENCH_PG_BIN=/usr/lib/postgresql/{cluster_major}/bin or reset the cluster"
                )

    def _init_cluster(self) -> None:
        assert self._bin is not None
        self.layout.local_dir.mkdir(parents=True, exist_ok=True)
        # initdb into a staging folder renamed on success, so an interrupted
        # init never leaves a half-made cluster where `up` would trust it.
        staging = Path(tempfile.mkdtemp(prefix="postgres.init-", dir=self.layout.local_dir))
        try:
            self._chown_to_owner(staging)
            if (
                os.geteuid() == 0
                and self._run_as_owner(["test", "-w", str(staging)]).returncode != 0
            ):
                raise StackError(
                    f"the postgres OS user cannot write {staging}: give it access to the folders above "
                    f"(chmod o+x) or set WORKBENCH_LOCAL_DIR to a folder it can reach"
                )
            pwfile = staging / "pwfile"
            pwfile.write_text(self._password + "\n")
            self._chown_to_owner(pwfile)
            cluster = staging / "data"
            result = self._run_as_owner(
                [
                    str(self._bin / "initdb"),
                    "-D",
                    str(cluster),
                    "-U",
                    "postgres",
                    "--pwfile",
                    str(pwfile),
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            )
            if result.returncode != 0:
                raise StackError("initdb failed:\n" + (result.stdout + result.stderr)[-2000:])
            with (cluster / "postgresql.conf").open("a") as conf:
                conf.write("\n# voice-workbench: listen address and port are set at each start\n")
                conf.write(_INCLUDE_LINE)
            cluster.rename(self.data_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # -- process -----------------------------------------------------------
    def running(self) -> bool:
        """True while this cluster's postmaster runs (pg_ctl checks its own pidfile)."""
        if self._bin is None:
            self._bin = _find_bin_dir()
        if self._bin is None or not (self.data_dir / "PG_VERSION").exists():
            return False
        return (
            self._run_as_owner(
                [str(self._bin / "pg_ctl"), "status", "-D", str(self.data_dir)]
            ).returncode
            == 0
        )

    def start(self) -> None:
        """Start the cluster on 127.0.0.1:<port> and wait until it accepts connections."""
        assert self._bin is not None, "prepare() first"
        if self.running():
            # A postmaster that was just killed still looks alive for a moment
            # while its children exit: wait for it to be healthy or gone.
            wait_until(
                lambda: self.healthy() or not self.running(),
                timeout_s=30,
                service=self.name,
                log_path=self.log_path,
            )
            if self.running():
                return
        ensure_ports_free("postgres", tcp={self.port: "WORKBENCH_POSTGRES_PORT"})
        conf = self.data_dir / "workbench.conf"
        conf.write_text(
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            "unix_socket_directories = ''\n"  # TCP on loopback only: no socket-permission puzzles
        )
        self._chown_to_owner(conf)
        self.layout.logs_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.touch(mode=0o600)
        self.log_path.chmod(0o600)
        self._chown_to_owner(self.log_path)
        result = self._run_as_owner(
            [
                str(self._bin / "pg_ctl"),
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                "60",
            ]
        )
        if result.returncode != 0:
            raise StackError(
                "postgres failed to start: "
                + (result.stderr or result.stdout).strip()
                + log_excerpt(self.log_path)
            )

    def healthy(self) -> bool:
        """True if the cluster answers a query with the stack's password."""
        try:
            with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                conn.execute("select 1")
            return True
        except psycopg.Error:
            return False

    def stop(self) -> bool:
        """Stop the cluster if it runs; True if it was running."""
        if not self.running():
            return False
        assert self._bin is not None
        result = self._run_as_owner(
            [
                str(self._bin / "pg_ctl"),
                "stop",
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
            ]
        )
        if result.returncode != 0:
            raise StackError("postgres failed to stop: " + result.stderr.strip())
        return True

    def pid(self) -> int | None:
        """The postmaster's pid, from its own pidfile."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    # -- schema ------------------------------------------------------------
    def provision_roles(self, passwords: Mapping[str, str]) -> None:
        """Apply Supabase's role model and set each login role's own password (idempotent).

        `passwords` maps `authenticator` and `supabase_auth_admin` to theirs; applied on
        every `up`, so a cluster made when they shared the superuser's gets its own.
        """
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            apply_bootstrap(conn)
            for role in ("authenticator", "supabase_auth_admin"):
                conn.execute(
                    psycopg.sql.SQL("alter role {} with login password {}").format(
                        psycopg.sql.Identifier(role), psycopg.sql.Literal(passwords[role])
                    )
                )

    def migrate(self) -> list[str]:
        """Apply pending app migrations; names of the migrations applied now."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return [m.path.name for m in apply_migrations(conn)]

    def seed(self, *, auth_url: str, service_role_key: str) -> list[LocalAccount]:
        """Make the local accounts (once per database) and the demo prompts; the accounts made now."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            made = ensure_local_accounts(
                conn,
                auth_url=auth_url,
                service_role_key=service_role_key,
                local_dir=self.layout.local_dir,
            )
            apply_seed(conn)
            return made
