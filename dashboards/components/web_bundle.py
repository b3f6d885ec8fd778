"""Build the browser bundle of the web components once per source version, into the per-user cache.

`npm ci` installs the locked `livekit-client` and `esbuild` (from the npm
registry, at set-up time, never at page load), then esbuild bundles
`voice_room.js` with its imports into one ES module. The cache key is the
hash of the sources and the lockfile, so a fresh clone reuses the bundle and
an edit rebuilds it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from workbench.config import REPO_ROOT

SOURCES = REPO_ROOT / "dashboards" / "components"
FILES = ("package.json", "package-lock.json", "voice_room.js")
BUNDLE = "voice_room.bundle.js"


class BundleError(RuntimeError):
    """The bundle could not be built (npm or node missing, registry unreachable, bad source)."""


def bundle_key() -> str:
    """Hash of everything the bundle is made from."""
    digest = hashlib.sha256()
    for name in FILES:
        digest.update(name.encode() + b"\0" + (SOURCES / name).read_bytes())
    return digest.hexdigest()[:16]


def bundle_path(cache_dir: Path) -> Path:
    """Where the bundle for the current sources lives (it may not be built yet)."""
    return cache_dir / "web" / bundle_key() / BUNDLE


def build_bundle(cache_dir: Path, *, log_path: Path) -> Path:
    """The bundle, built now if this version has none yet."""
    target = bundle_path(cache_dir)
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise BundleError(
            "building the web bundle needs Node.js and npm on PATH (apt-get install nodejs npm)"
        )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent.parent) as tmp, log_path.open("w") as log:
        work = Path(tmp)
        for name in FILES:
            shutil.copy2(SOURCES / name, work / name)
        for command in (
            [npm, "ci", "--no-audit", "--no-fund"],
            [
                str(work / "node_modules" / ".bin" / "esbuild"),
                "voice_room.js",
                "--bundle",
                "--format=esm",
                "--target=es2020",
                "--minify",
                "--legal-comments=eof",
                f"--outfile={BUNDLE}",
            ],
        ):
            done = subprocess.run(
                command, cwd=work, stdout=log, stderr=subprocess.STDOUT, check=False
            )
            if done.returncode != 0:
                raise BundleError(
                    f"`{' '.join(command[:2])}` failed building the web bundle; see {log_path}"
                )
        built = target.parent.with_name(target.parent.name + ".tmp")
        shutil.rmtree(built, ignore_errors=True)
        built.mkdir()
        shutil.copy2(work / BUNDLE, built / BUNDLE)
        built.replace(target.parent)  # atomic: a reader sees no bundle or a whole one
    return target
