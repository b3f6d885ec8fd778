"""Binaries from Debian packages, without installing them: on PATH, or unpacked into the cache.

`apt-get install` would also start the package's system service (nginx on port
80, Prometheus on 9090) outside the stack's control; `apt-get download` and
`dpkg -x` give the same binaries under the cache instead, once per machine.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from stack.errors import StackError


def ensure_debian_binary(
    package: str,
    path: str,
    *,
    cache_dir: Path,
    log_path: Path | None = None,
    also: Sequence[str] = (),
) -> Path:
    """The binary at `path` inside Debian's `package` (e.g. "usr/sbin/nginx").

    The one on PATH if there is one; else the package, and the packages `also`
    names (where the binary lives, the libraries it links: see `library_path`),
    are fetched with `apt-get download` and unpacked into one folder under
    `<cache>/debs/` (once).
    """
    found = shutil.which(Path(path).name)
    if found:
        return Path(found)
    unpacked = cache_dir / "debs" / "+".join([package, *also])
    binary = unpacked / path
    if binary.exists():
        return binary
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise StackError(
            f"{Path(path).name} is needed: install Debian's `{package}` package "
            "(or put the binary on PATH)"
        )
    packages = [package, *also]
    with tempfile.TemporaryDirectory() as download:
        fetched = subprocess.run(
            ["apt-get", "download", *packages],
            cwd=download,
            capture_output=True,
            text=True,
            check=False,
        )
        debs = [sorted(Path(download).glob(f"{name}_*.deb"))[-1:] for name in packages]
        if fetched.returncode != 0 or not all(debs):
            if log_path is not None:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log_path.write_text(fetched.stdout + fetched.stderr)
            raise StackError(
                f"could not fetch Debian's {' '.join(packages)} (`apt-get download "
                f"{' '.join(packages)}`): {fetched.stderr.strip()[-500:]}; install {package} "
                "or run `apt-get update`"
            )
        staging = unpacked.with_name(unpacked.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        for deb in debs:
            subprocess.run(
                ["dpkg", "-x", str(deb[0]), str(staging)], check=True, capture_output=True
            )
        staging.replace(unpacked)
    return binary


def library_path(binary: Path) -> str | None:
    """LD_LIBRARY_PATH for a binary unpacked by `ensure_debian_binary` (its packages'
    libraries); None for one installed on the system."""
    if binary.parent.parent.name != "usr" or binary.parents[3].name != "debs":
        return None
    found = sorted(str(d) for d in (binary.parents[2] / "usr" / "lib").glob("*-linux-gnu"))
    return ":".join(found) or None
