"""Build Go services once into the per-user cache, keyed by module version.

A binary is found in this order: a prebuilt one named by its override variable;
the cached build; `go install <module>@<version>` from the Go module proxy; a
build from a vendored source archive (or folder) when the proxy refuses the
module. Each cached build records which way it came (`ORIGIN` beside it), so
`status` can say.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from stack.errors import ArtefactUnavailable, StackError
from stack.processes import log_excerpt
from workbench.config import REPO_ROOT

ORIGIN_FILE = "ORIGIN"


@dataclass(frozen=True)
class SourceArchive:
    """The module's source as `git archive` writes it (one top folder), checked by sha256.

    `env` names a variable that may point at another archive or an unpacked folder;
    without it, `filename` is looked for in `shared/vendor/` beside the checkout (or
    beside the repository it was cloned from).
    """

    filename: str
    sha256: str
    env: str
    ldflags: str = ""


@dataclass(frozen=True)
class GoBinary:
    """A binary made by `go install <package>@<version>` (or from its source archive).

    `override_env` names a variable that may point at a prebuilt binary instead.
    """

    name: str
    package: str
    version: str
    binary: str
    override_env: str
    cgo: bool = True
    source: SourceArchive | None = None

    def cached_path(self, cache_dir: Path) -> Path:
        """Where the built binary lives in the cache."""
        return cache_dir / "bin" / f"{self.name}-{self.version[:12]}" / self.binary


@dataclass(frozen=True)
class ResolvedBinary:
    """A binary ready to run and how it was obtained (shown by `status`)."""

    path: Path
    origin: str


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
    # Some module proxies refuse github.com/supabase/auth (403); its source archive,
    # vendored beside the project, builds the same binary from the same commit.
    source=SourceArchive(
        filename="supabase-auth-v2.189.0.tar.gz",
        sha256="1bea2a967da8836fd9e822bdc0b972f0c0a6b2f5cf66b9ab35b3d25ccfa73aa3",
        env="WORKBENCH_AUTH_SOURCE",
        ldflags="-X github.com/supabase/auth/internal/utilities.Version=v2.189.0",
    ),
)


def ensure_go_binary(spec: GoBinary, *, cache_dir: Path, log_path: Path) -> ResolvedBinary:
    """The binary, building it into the cache the first time.

    Raises ArtefactUnavailable when neither the module proxy nor a source archive
    can provide it, and StackError (with the build log's tail) for any other failure.
    """
    override = os.environ.get(spec.override_env)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise StackError(f"{spec.override_env}={override} is not an executable file")
        return ResolvedBinary(path, f"prebuilt ({spec.override_env})")
    target = spec.cached_path(cache_dir)
    if target.is_file():
        return ResolvedBinary(target, _cached_origin(target))
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
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        try:
            origin = _go_install(spec, go=go, staging=staging, log_path=log_path)
        except ArtefactUnavailable as refused:
            if spec.source is None:
                raise
            source = find_source(spec.source)
            if source is None:
                raise ArtefactUnavailable(
                    f"{refused} The source archive {spec.source.filename} was not found either: "
                    f"set {spec.source.env} to it (or to its unpacked folder)"
                ) from None
            origin = _build_from_source(
                spec, spec.source, source, go=go, staging=staging, log_path=log_path
            )
        built = staging / spec.binary
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / ORIGIN_FILE).write_text(origin + "\n")
        built.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ResolvedBinary(target, f"cache, {origin}")


def _cached_origin(target: Path) -> str:
    try:
        return "cache, " + (target.parent / ORIGIN_FILE).read_text().strip()
    except OSError:
        return "cache"


def binary_origin(spec: GoBinary, *, cache_dir: Path) -> str | None:
    """How the binary `ensure_go_binary` would use was obtained, without building; None if not yet."""
    if os.environ.get(spec.override_env):
        return f"prebuilt ({spec.override_env})"
    target = spec.cached_path(cache_dir)
    return _cached_origin(target) if target.is_file() else None


def _go_install(spec: GoBinary, *, go: str, staging: Path, log_path: Path) -> str:
    env = dict(os.environ, GOBIN=str(staging), CGO_ENABLED="1" if spec.cgo else "0")
    print(
        f"building {spec.name} {spec.version[:12]} with `go install` (once; cached) ...",
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
    if result.returncode == 0 and (staging / spec.binary).is_file():
        return f"built by `go install {spec.package}@{spec.version[:12]}`"
    output = log_path.read_text(errors="replace")
    if "403 Forbidden" in output or "not available" in output or "410 Gone" in output:
        raise ArtefactUnavailable(
            f"{spec.name}: the Go module proxy refused {spec.package}@{spec.version[:12]}; "
            f"set {spec.override_env} to a prebuilt binary, or use hosted services "
            f"(README, 'Hosted services')."
        )
    raise StackError(f"{spec.name}: `go install` failed." + log_excerpt(log_path))


def find_source(source: SourceArchive) -> Path | None:
    """The archive or folder to build from: `source.env`, else `shared/vendor/` beside the project."""
    named = os.environ.get(source.env)
    if named:
        path = Path(named)
        if not path.exists():
            raise StackError(f"{source.env}={named} does not exist")
        return path
    for project in (REPO_ROOT, _cloned_from(REPO_ROOT)):
        if project is not None:
            candidate = project.parent / "shared" / "vendor" / source.filename
            if candidate.is_file():
                return candidate
    return None


def _cloned_from(checkout: Path) -> Path | None:
    """The local repository this checkout was cloned from, if it was cloned from a folder."""
    result = subprocess.run(
        ["git", "-C", str(checkout), "config", "--get", "remote.origin.url"],
        capture_output=True,
        text=True,
        check=False,
    )
    url = result.stdout.strip().removeprefix("file://")
    if result.returncode != 0 or not url.startswith("/"):
        return None
    return Path(url).resolve()


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _build_from_source(
    spec: GoBinary,
    source: SourceArchive,
    path: Path,
    *,
    go: str,
    staging: Path,
    log_path: Path,
) -> str:
    tree = staging / "src"
    if path.is_dir():
        shutil.copytree(path, tree)
    else:
        actual = sha256_of(path)
        if actual != source.sha256:
            raise StackError(
                f"{spec.name}: {path} has sha256 {actual}, expected {source.sha256}: "
                f"it is not the source of {spec.package}@{spec.version[:12]}; replace it, or set "
                f"{source.env} to the right archive"
            )
        with tarfile.open(path) as archive:
            archive.extractall(staging / "unpacked", filter="data")
        (top,) = (staging / "unpacked").iterdir()  # `git archive --prefix=<name>/` has one
        top.rename(tree)
    print(
        f"building {spec.name} {spec.version[:12]} from its source {path} (once; cached) ...",
        flush=True,
    )
    # Dependencies come from the module proxy; -mod=mod lets go fill go.sum as needed.
    env = dict(os.environ, CGO_ENABLED="1" if spec.cgo else "0", GOFLAGS="-mod=mod")
    command = [go, "build", "-o", str(staging / spec.binary)]
    if source.ldflags:
        command += ["-ldflags", source.ldflags]
    with log_path.open("a") as log:
        log.write(f"\n--- building from source {path}\n")
        log.flush()
        result = subprocess.run(
            [*command, "."], cwd=tree, stdout=log, stderr=subprocess.STDOUT, env=env, check=False
        )
    if result.returncode != 0 or not (staging / spec.binary).is_file():
        raise StackError(f"{spec.name}: building from {path} failed." + log_excerpt(log_path))
    return (
        f"built from source {path.name} (sha256 checked)"
        if path.is_file()
        else (f"built from source folder {path}")
    )
