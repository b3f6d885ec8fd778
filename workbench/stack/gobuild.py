"""Build Go services once into the per-user cache, keyed by module version."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from workbench.stack.errors import ArtefactUnavailable, StackError
from workbench.stack.processes import log_excerpt


@dataclass(frozen=True)
class GoBinary:
    """A binary made by `go install <package>@<version>`.

    `override_env` names a variable that may point at a prebuilt binary instead.
    """

    name: str
    package: str
    version: str
    binary: str
    override_env: str
    cgo: bool = True

    def cached_path(self, cache_dir: Path) -> Path:
        """Where the built binary lives in the cache."""
        return cache_dir / "bin" / f"{self.name}-{self.version[:12]}" / self.binary


LIVEKIT_SERVER = GoBinary(
    name="livekit-server",
    package="github.com/livekit/livekit-server/cmd/server",
    version="v1.13.5",  # no `replace` lines at this tag, so `go install` accepts it
    binary="server",
    override_env="WORKBENCH_LIVEKIT_BIN",
)
SUPABASE_AUTH = GoBinary(
    name="supabase-auth",
    package="github.com/supabase/auth",
    # The commit of tag v2.189.0: the module path has no /v2, so tags are not Go
    # versions, and v2.190.0+ carry a `replace` line that `go install` refuses.
    version="4fa66ba71d8c55b5c95cd5635766ed8bbae6d96a",
    binary="auth",
    override_env="WORKBENCH_AUTH_BIN",
    cgo=False,
)


def ensure_go_binary(spec: GoBinary, *, cache_dir: Path, log_path: Path) -> Path:
    """Path to the binary, building it into the cache the first time.

    Raises ArtefactUnavailable when the module proxy refuses the module, and
    StackError (with the build log's tail) for any other failure.
    """
    override = os.environ.get(spec.override_env)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise StackError(f"{spec.override_env}={override} is not an executable file")
        return path
    target = spec.cached_path(cache_dir)
    if target.is_file():
        return target
    go = os.environ.get("WORKBENCH_GO") or shutil.which("go")
    if go is None:
        raise StackError(
            f"{spec.name} must be built once and the Go toolchain is not on PATH: install Go >= 1.25 "
            f"(Debian: apt-get install golang, or https://go.dev/dl), set WORKBENCH_GO=/path/to/go, "
            f"or set {spec.override_env} to a prebuilt binary"
        )
    staging = target.parent.with_name(target.parent.name + f".building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    env = dict(os.environ, GOBIN=str(staging), CGO_ENABLED="1" if spec.cgo else "0")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"building {spec.name} {spec.version[:12]} with {go} (once; cached in {target.parent}) ...",
        flush=True,
    )
    with log_path.open("w") as log:
        result = subprocess.run(
            [go, "install", f"{spec.package}@{spec.version}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        )
    built = staging / spec.binary
    if result.returncode != 0 or not built.is_file():
        shutil.rmtree(staging, ignore_errors=True)
        output = log_path.read_text(errors="replace")
        if "403 Forbidden" in output or "not available" in output or "410 Gone" in output:
            raise ArtefactUnavailable(
                f"{spec.name}: the Go module proxy refused {spec.package}@{spec.version[:12]}; "
                f"set {spec.override_env} to a prebuilt binary, or use hosted services "
                f"(README, 'Hosted services')"
            )
        raise StackError(f"{spec.name}: `go install` failed." + log_excerpt(log_path))
    target.parent.mkdir(parents=True, exist_ok=True)
    built.replace(target)
    shutil.rmtree(staging, ignore_errors=True)
    return target
