"""Where sign-in may send the browser next: same-site paths only."""

from __future__ import annotations

import pytest

from dashboards.auth_pages import _safe_next

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/analytics", "/analytics"),
        ("/history?x=1", "/history?x=1"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("analytics", "/"),
    ],
)
def test_next_is_a_same_site_path(target: str | None, expected: str) -> None:
    assert _safe_next(target) == expected
