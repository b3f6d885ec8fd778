"""Building Go services: missing toolchain, refused module, prebuilt override, cache reuse."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from stack.errors import ArtefactUnavailable, StackError
from stack.gobuild import (
    SUPABASE_AUTH,
    GoBinary,
    SourceArchive,
    binary_origin,
    ensure_go_binary,
    find_source,
    sha256_of,
)

pytestmark = pytest.mark.unit

SPEC = GoBinary(
    name="demo",
    package="example.com/demo/cmd/demo",
    version="v1.2.3",
    binary="demo",
    override_env="DEMO_BIN",
)


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMO_BIN", raising=False)
    monkeypatch.delenv("WORKBENCH_GO", raising=False)


def test_missing_go_toolchain_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(
        StackError, match=r"Go toolchain is not on PATH: install Go .*WORKBENCH_GO.*DEMO_BIN"
    ):
        ensure_go_binary(SPEC, cache_dir=tmp_path / "cache", log_path=tmp_path / "build.log")


def test_refused_module_is_unavailable_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Exactly what `go install` prints when the module proxy refuses a module.
    go = _script(
        tmp_path / "go",
        "echo 'go: example.com/demo@v1.2.3: reading https://proxy.golang.org/...: 403 Forbidden' >&2\n"
        "echo '\tserver response: This module version is not available.' >&2\nexit 1\n",
    )
    monkeypatch.setenv("WORKBENCH_GO", str(go))
    with pytest.raises(
        ArtefactUnavailable, match=r"proxy refused example\.com/demo/cmd/demo@v1\.2\.3"
    ):
        ensure_go_binary(SPEC, cache_dir=tmp_path / "cache", log_path=tmp_path / "build.log")
    assert not SPEC.cached_path(tmp_path / "cache").exists()


def test_failed_build_shows_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    go = _script(tmp_path / "go", "echo 'main.go:3: syntax error' >&2\nexit 2\n")
    monkeypatch.setenv("WORKBENCH_GO", str(go))
    with pytest.raises(StackError, match=r"(?s)`go install` failed.*syntax error"):
        ensure_go_binary(SPEC, cache_dir=tmp_path / "cache", log_path=tmp_path / "build.log")


def test_built_binary_is_cached_by_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = tmp_path / "calls"
    go = _script(
        tmp_path / "go",
        f'echo "$@" >> {calls}\nprintf "#!/bin/sh\\necho demo\\n" > "$GOBIN/demo"\nchmod +x "$GOBIN/demo"\n',
    )
    monkeypatch.setenv("WORKBENCH_GO", str(go))
    first = ensure_go_binary(SPEC, cache_dir=tmp_path / "cache", log_path=tmp_path / "build.log")
    second = ensure_go_binary(SPEC, cache_dir=tmp_path / "cache", log_path=tmp_path / "build.log")
    assert "go install example.com/demo/cmd/demo@v1.2.3" in second.origin
    assert first.path == second.path == tmp_path / "cache" / "bin" / "demo-v1.2.3" / "demo"
    assert calls.read_text().splitlines() == ["install example.com/demo/cmd/demo@v1.2.3"]


def test_prebuilt_override_must_be_executable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "demo"
    plain.write_text("not executable")
    monkeypatch.setenv("DEMO_BIN", str(plain))
    with pytest.raises(StackError, match=r"DEMO_BIN=.* is not an executable file"):
        ensure_go_binary(SPEC, cache_dir=tmp_path / "cache", log_path=tmp_path / "build.log")
    plain.chmod(0o755)
    assert (
        ensure_go_binary(SPEC, cache_dir=tmp_path / "cache", log_path=tmp_path / "build.log").path
        == plain
    )
    assert os.access(plain, os.X_OK)


# A `go` that the proxy refuses for `install` and that, for `build -o OUT .`,
# writes a binary which prints the folder it was built in (so the test sees
# which source tree was used).
_REFUSING_GO = (
    'if [ "$1" = install ]; then\n'
    "  echo 'go: reading https://proxy.golang.org/...: 403 Forbidden' >&2; exit 1\n"
    "fi\n"
    'out="$3"; printf "#!/bin/sh\\necho built-in %s\\n" "$(cat MARKER)" > "$out"; chmod +x "$out"\n'
)


def _source_archive(tmp_path: Path, marker: str) -> Path:
    tree = tmp_path / "tree" / "demo-v1.2.3"
    tree.mkdir(parents=True)
    (tree / "MARKER").write_text(marker)
    archive = tmp_path / "demo-v1.2.3.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname="demo-v1.2.3")
    return archive


def _with_source(archive: Path, sha256: str) -> GoBinary:
    return dataclasses.replace(
        SPEC, source=SourceArchive(filename=archive.name, sha256=sha256, env="DEMO_SOURCE")
    )


def test_refused_module_is_built_from_its_source_archive_and_cached_with_its_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _source_archive(tmp_path, "vendored-tree")
    spec = _with_source(archive, sha256_of(archive))
    monkeypatch.setenv("WORKBENCH_GO", str(_script(tmp_path / "go", _REFUSING_GO)))
    monkeypatch.setenv("DEMO_SOURCE", str(archive))
    built = ensure_go_binary(spec, cache_dir=tmp_path / "cache", log_path=tmp_path / "build.log")
    assert subprocess.run([built.path], capture_output=True, text=True).stdout == (
        "built-in vendored-tree\n"
    )
    assert "from source demo-v1.2.3.tar.gz (sha256 checked)" in built.origin
    assert binary_origin(
        spec, cache_dir=tmp_path / "cache"
    ) == "cache, " + built.origin.removeprefix("cache, ")
    # The second call is the cache: no build, same binary, origin still known.
    monkeypatch.setenv("WORKBENCH_GO", str(tmp_path / "no-such-go"))
    again = ensure_go_binary(spec, cache_dir=tmp_path / "cache", log_path=tmp_path / "build.log")
    assert again.path == built.path
    assert "sha256 checked" in again.origin


def test_source_archive_with_a_wrong_checksum_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _source_archive(tmp_path, "tampered")
    spec = _with_source(archive, "0" * 64)
    monkeypatch.setenv("WORKBENCH_GO", str(_script(tmp_path / "go", _REFUSING_GO)))
    monkeypatch.setenv("DEMO_SOURCE", str(archive))
    with pytest.raises(StackError, match=r"has sha256 [0-9a-f]{64}, expected 0{64}"):
        ensure_go_binary(spec, cache_dir=tmp_path / "cache", log_path=tmp_path / "build.log")
    assert not spec.cached_path(tmp_path / "cache").exists()


def test_refused_module_without_any_source_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _with_source(tmp_path / "absent-v9.tar.gz", "0" * 64)
    monkeypatch.setenv("WORKBENCH_GO", str(_script(tmp_path / "go", _REFUSING_GO)))
    monkeypatch.delenv("DEMO_SOURCE", raising=False)
    with pytest.raises(
        ArtefactUnavailable, match=r"absent-v9\.tar\.gz was not found .* DEMO_SOURCE"
    ):
        ensure_go_binary(spec, cache_dir=tmp_path / "cache", log_path=tmp_path / "build.log")


def test_the_vendored_auth_source_is_found_beside_the_project() -> None:
    # The checkout (or the repository it was cloned from) sits beside shared/vendor/
    # on these machines; elsewhere WORKBENCH_AUTH_SOURCE names the archive.
    assert SUPABASE_AUTH.source is not None
    found = find_source(SUPABASE_AUTH.source)
    if found is None:
        pytest.skip("no shared/vendor/ beside this checkout (set WORKBENCH_AUTH_SOURCE)")
    assert sha256_of(found) == SUPABASE_AUTH.source.sha256
