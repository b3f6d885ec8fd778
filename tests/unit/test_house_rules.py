"""Rules a newcomer can rely on, measured: small modules and functions, each fact in one place.

Sizes: no module of the product (everything outside tests/ and bench/) over 450
lines, no function over 60. `OVERSIZED` names what is over today, each to be split;
the test fails for anything new over the limits and for an entry that has come under
them (take it off the list), so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from workbench.config import REPO_ROOT
from workbench.latency_stages import STAGES

pytestmark = pytest.mark.unit

PACKAGES = ("workbench", "agent", "dashboards", "evals", "stack", "workbench_datasets")
MODULE_LINES, FUNCTION_LINES = 450, 60
STAGE_DEFINITION = Path("workbench/latency_stages.py")

# Over the limits today; each is to be split (house order, issue 29).
OVERSIZED = {
    "workbench/config.py",
    "workbench/exports.py:export_conversations",
    "workbench/rooms.py:open_room",
    "workbench/models/convert.py:whisper_ct2_to_transformers",
    "workbench/models/faster_whisper_stt.py:_transcribe_short",
    "dashboards/app.py:_session_page",
    "dashboards/app.py:page",
    "dashboards/pages/admin.py:admin_view",
    "dashboards/pages/admin.py:_versions_section",
    "dashboards/pages/analytics.py:analytics_view",
    "dashboards/pages/conversation.py:conversation_view",
    "evals/runner.py:run_task",
    "evals/__main__.py:main",
    "stack/tls_proxy.py:nginx_config",
    "stack/services.py:__init__",
    "workbench_datasets/__main__.py:main",
}


def _product_modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO_ROOT / package).rglob("*.py"))


def _oversized() -> set[str]:
    found = set()
    for path in _product_modules():
        name = path.relative_to(REPO_ROOT).as_posix()
        text = path.read_text()
        if len(text.splitlines()) > MODULE_LINES:
            found.add(name)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > FUNCTION_LINES:
                    found.add(f"{name}:{node.name}")
    return found


def test_modules_and_functions_stay_small() -> None:
    found = _oversized()
    assert not found - OVERSIZED, (
        f"over {MODULE_LINES} lines a module or {FUNCTION_LINES} a function"
    )
    assert not OVERSIZED - found, "now within the limits: take these off OVERSIZED"


def test_a_latency_stage_is_named_in_one_place() -> None:
    """Code reads `workbench.latency_stages`; a stage's name as a string anywhere else is a copy."""
    names = {stage.field for stage in STAGES} | {
        stage.rollup_column for stage in STAGES if stage.rollup_column
    }
    copies = []
    for path in _product_modules():
        if path.relative_to(REPO_ROOT) == STAGE_DEFINITION:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                copies.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {node.value!r}")
    assert not copies
