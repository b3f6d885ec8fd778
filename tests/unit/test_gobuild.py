"""Building Go services: missing toolchain, refused module, prebuilt override, cache reuse."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from workbench.stack.errors import ArtefactUnavailable, StackError
from workbench.stack.gobuild import GoBinary, ensure_go_binary

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
    assert first == second == tmp_path / "cache" / "bin" / "demo-v1.2.3" / "demo"
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
        ensure_go_binary(SPEC, cache_dir=tmp_path / "cache", log_path=tmp_path / "build.log")
        == plain
    )
    assert os.access(plain, os.X_OK)
