"""No one rides another user's page: Bokeh session ids are signed and each session is its owner's.

The probe that found the hole, replayed against the stack's web server: user A
opens a page under a session id of the attacker's choosing, or simply opens a
page; user B, signed in as themselves, opens that page's websocket and pulls the
document. Each way must be refused, while A's own websocket still gets A's page.
"""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import quote

import httpx
import pytest
from bokeh.util.token import generate_jwt_token, get_session_id
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.support.personas import Persona
from tests.support.web import run_async

pytestmark = pytest.mark.ui


def _page(base_url: str, cookie: str, path: str) -> httpx.Response:
    with httpx.Client(base_url=base_url, cookies={"vwb_session": cookie}) as browser:
        return browser.get(path)


def _token(page: httpx.Response) -> str:
    found = re.search(r'"token":\s*"([^"]+)"', page.text)
    assert found, "no session token in the page"
    return found.group(1)


def _message(header: dict[str, str]) -> list[str]:
    """A Bokeh protocol message: header, metadata and content frames."""
    return [json.dumps(header), "{}", "{}"]


def _pull_document(base_url: str, cookie: str, token: str, path: str) -> str | None:
    """The document a websocket with this cookie and token gets, or None when refused."""

    async def pull() -> str | None:
        request = HTTPRequest(
            base_url.replace("http://", "ws://") + f"{path}/ws",
            headers={"Cookie": f"vwb_session={cookie}", "Origin": base_url},
        )
        try:
            connection = await websocket_connect(request, subprotocols=["bokeh", token])
        except HTTPClientError:
            return None  # refused at the handshake
        try:
            frames = [await connection.read_message() for _ in range(3)]  # the ACK
            if frames[0] is None or json.loads(frames[0])["msgtype"] != "ACK":
                return None  # closed before it acknowledged the session
            for frame in _message({"msgid": "1", "msgtype": "PULL-DOC-REQ"}):
                await connection.write_message(frame)
            reply = [await connection.read_message() for _ in range(3)]
            if reply[0] is None:
                return None
            assert json.loads(str(reply[0]))["msgtype"] == "PULL-DOC-REPLY", reply[0]
            return str(reply[2])
        finally:
            connection.close()

    return run_async(pull())


def test_a_page_session_cannot_be_chosen_or_joined_by_another_user(
    base_url: str,
    people: dict[str, Persona],
    cookie_for,  # type: ignore[no-untyped-def]
) -> None:
    owner, other = people["researcher"], people["user"]
    assert owner.claims.email is not None
    assert other.claims.email is not None
    owner_cookie, other_cookie = cookie_for(owner), cookie_for(other)

    # The probe's first step: A opens a page under an id the attacker chose.
    chosen = uuid.uuid4().hex
    assert _page(base_url, owner_cookie, f"/history?bokeh-session-id={chosen}").status_code == 403

    page = _page(base_url, owner_cookie, "/history")
    assert page.status_code == 200
    owner_token = _token(page)
    session_id = get_session_id(owner_token)

    # B joins A's session with A's own (signed) token, or with an unsigned one for its id:
    # refused either way, and B's own request for the page by its id is refused too.
    assert _pull_document(base_url, other_cookie, owner_token, "/history") is None
    unsigned = generate_jwt_token(session_id, signed=False, extra_payload={"headers": {}})
    assert _pull_document(base_url, other_cookie, unsigned, "/history") is None
    named = f"/history?bokeh-session-id={quote(session_id)}"
    assert _page(base_url, other_cookie, named).status_code == 403

    # A's own websocket still gets A's page: the refusals above are about who asks.
    document = _pull_document(base_url, owner_cookie, owner_token, "/history")
    assert document is not None
    assert "Voice Workbench \\u00b7 History" in document or "Voice Workbench · History" in document


def test_a_session_id_in_a_link_does_not_survive_sign_in(base_url: str) -> None:
    """Signing in from a link that names a page session lands on the page without it."""
    with httpx.Client(base_url=base_url) as browser:
        first = browser.get("/history?bokeh-session-id=chosen-by-someone&theme=dark")
    assert first.status_code == 302
    login = first.headers["location"]
    with httpx.Client(base_url=base_url) as browser:
        form = browser.get(login).text
    action = re.search(r'<form method="post" action="([^"]+)"', form)
    assert action, form
    assert "bokeh-session-id" not in action.group(1)
    assert "theme%3Ddark" in action.group(1)
