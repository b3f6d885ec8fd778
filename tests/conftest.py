"""Test layers are enforced: every test module declares exactly one layer marker.

`unit` (no services), `integration` (the real local stack), `ui` (Playwright
+ Debian Chromium), or notebooks through nbval. A module under tests/unit/
must be `unit`, under tests/integration/ must be `integration`, and so on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

LAYERS = ("unit", "integration", "ui")
TESTS_DIR = Path(__file__).parent


def _module_layers(module: object) -> set[str]:
    marks = getattr(module, "pytestmark", [])
    if not isinstance(marks, list):
        marks = [marks]
    return {mark.name for mark in marks if mark.name in LAYERS}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fail collection if a test module has no layer marker, several, or one not matching its folder."""
    problems: dict[str, str] = {}
    for item in items:
        module = item.getparent(pytest.Module)
        if module is None or module.nodeid in problems:
            continue
        layers = _module_layers(module.obj)
        folder = Path(str(module.path)).relative_to(TESTS_DIR).parts[0]
        if len(layers) != 1:
            problems[module.nodeid] = (
                f"needs exactly one of pytestmark = pytest.mark.{{{','.join(LAYERS)}}}"
            )
        elif folder in LAYERS and folder not in layers:
            problems[module.nodeid] = f"lives in tests/{folder}/ but is marked {layers.pop()}"
    if problems:
        lines = "\n".join(f"  {nodeid}: {why}" for nodeid, why in sorted(problems.items()))
        raise pytest.UsageError("test modules without a proper layer marker:\n" + lines)
