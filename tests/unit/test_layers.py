"""The packages keep the layers docs/architecture.md draws (imports point down only)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from workbench.config import REPO_ROOT

pytestmark = pytest.mark.unit

# Which of the project's packages each may import (besides itself). Anything not
# listed is forbidden; `stack` (the local dev stack) sits on top and nothing
# below it imports it. bench/, tests/ and notebooks/ may use everything.
ALLOWED = {
    "workbench": set(),
    "workbench_datasets": {"workbench"},
    "agent": {"workbench"},
    "evals": {"workbench", "workbench_datasets"},
    "dashboards": {"workbench", "evals"},
    "stack": {"workbench", "dashboards"},
}


def _imports(package: str) -> dict[str, set[str]]:
    """For each project package `package` imports, the files that do."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in ALLOWED and top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO_ROOT)))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_down_the_layers(package: str) -> None:
    wrong = {
        imported: files
        for imported, files in _imports(package).items()
        if imported not in ALLOWED[package]
    }
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package])}; found {wrong}"


def test_every_package_is_in_the_map() -> None:
    packages = {
        path.parent.name
        for path in REPO_ROOT.glob("*/__init__.py")
        if path.parent.name not in ("tests", "bench", "notebooks")
    }
    assert packages == set(ALLOWED), (
        "add the new package to ALLOWED and to the map in docs/architecture.md"
    )


def test_the_checker_sees_a_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The AST walk finds imports in nested functions too (a lazy import is still an import)."""
    (tmp_path / "workbench").mkdir()
    (tmp_path / "workbench" / "lazy.py").write_text("def f():\n    from agent import worker\n")
    monkeypatch.setattr(f"{__name__}.REPO_ROOT", tmp_path)
    assert _imports("workbench") == {"agent": {"workbench/lazy.py"}}
