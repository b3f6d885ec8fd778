"""Test layers are enforced: every test module declares exactly one layer marker.

`unit` (no services), `integration` (the real local stack), `ui` (Playwright
+ Debian Chromium), or notebooks through nbval. A module under tests/unit/
must be `unit`, under tests/integration/ must be `integration`, and so on.

And the layers that use the stack run only on the tests' own instance of it
(`stack/instances.py`, which `./dev test` starts), never on the one a person keeps
their data in.
"""

from __future__ import annotations

import os
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """With WORKBENCH_NO_SKIPS=1 (CI sets it) a skipped test fails, but for `gpu` tests without a GPU.

    Every skip here means a part of the machine is missing (a Debian package, root
    for network namespaces, the vendored source); on CI that part is a broken
    set-up, not a reason to pass quietly.
    """
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("WORKBENCH_NO_SKIPS") == "1"
        and report.skipped
        and not hasattr(report, "wasxfail")
        and item.get_closest_marker("gpu") is None
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped where skips are not allowed (WORKBENCH_NO_SKIPS=1): {reason}"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Refuse to run integration or browser tests on any stack but the tests' own."""
    from stack.instances import is_test_instance
    from workbench.config import get_settings

    uses_stack = [
        item.nodeid
        for item in session.items
        if item.get_closest_marker("integration") or item.get_closest_marker("ui")
    ]
    if uses_stack and not is_test_instance(get_settings()):
        raise pytest.UsageError(
            f"{len(uses_stack)} integration or browser test(s) (e.g. {uses_stack[0]}) would run "
            "on the workbench `./dev up` serves you: run them with `./dev test PATH...`, which "
            "uses the tests' own stack (.local/test/)"
        )
