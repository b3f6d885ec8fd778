"""What the auth pages and file links let through: same-site paths only, no leak, no escape."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from supabase_auth.errors import AuthApiError

from dashboards.auth_forms import safe_next
from dashboards.files import attachment, file_url
from workbench.auth.client import InvalidCredentials, _translate

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
        # Browsers drop tabs and newlines before they parse: each of these is "//evil.example/".
        ("/\t/evil.example/", "/"),
        ("/\n/evil.example/", "/"),
        ("/\r/evil.example/", "/"),
        ("/\x00/evil.example/", "/"),
        ("/\x7f/evil.example/", "/"),
        ("/ /evil.example/", "/"),
        ("/history\\..\\evil", "/"),
        ("/history\u2028", "/"),
        ("javascript:alert(1)", "/"),
        ("/history?theme=dark#top", "/history?theme=dark#top"),
        # A page never takes its Bokeh session from a link, not even through sign-in.
        ("/history?bokeh-session-id=chosen&theme=dark", "/history?theme=dark"),
        ("/admin?bokeh-token=abc", "/admin"),
    ],
)
def test_next_is_a_same_site_path(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("Invalid login credentials", "invalid_credentials"),
        ("Email not confirmed", "email_not_confirmed"),
    ],
)
def test_an_unconfirmed_account_is_answered_like_a_wrong_password(message: str, code: str) -> None:
    """GoTrue says "Email not confirmed" only to the right password: the user must not see it."""
    translated = _translate(AuthApiError(message, 400, code))
    assert isinstance(translated, InvalidCredentials)
    assert str(translated) == "wrong email or password"


@pytest.mark.parametrize(
    "path",
    ['u/"><script>alert(1)</script>.png', "u/a b (c).csv", "u/x');alert(1);//.wav", "u/ü.parquet"],
)
def test_a_stored_path_cannot_leave_the_link_it_is_written_into(path: str) -> None:
    url = file_url("avatars", path)
    assert url.startswith("/files/avatars/u/")
    assert not set(url) & set("\"'<> ()"), url
    assert unquote(url.removeprefix("/files/avatars/")) == path  # what Tornado hands the handler


def test_a_download_name_cannot_end_its_header() -> None:
    header = attachment('a"; filename="evil.html\r\n.csv')
    assert header.count('"') == 2
    assert "\r" not in header
    assert "\n" not in header
    assert header.endswith("filename*=UTF-8''a%22%3B%20filename%3D%22evil.html%0D%0A.csv")
