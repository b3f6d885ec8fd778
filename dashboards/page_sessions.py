"""Each page's Bokeh session belongs to the signed-in user whose request created it.

A Bokeh session is a live document on the server (a user's History, an admin's
Admin page, a Conversation page's LiveKit token); whoever holds its id can open
its websocket and read or drive it. Three rules keep it its owner's:

- session ids and tokens are signed with a server secret (`bokeh_secret_key`),
  so a client cannot choose an id or forge a token for one;
- a page request may not name a session (`bokeh-session-id`, `bokeh-token`):
  every page gets a fresh, unpredictable id that only its own HTML carries;
- a websocket may attach to an existing session only when the signed-in user
  behind the websocket is the one whose request created that session.

`claim` applies the last two; the auth provider calls it on every request it
authenticates (pages and websockets alike), before Bokeh looks at the session.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from weakref import WeakKeyDictionary

from bokeh.protocol.exceptions import ProtocolError
from bokeh.server.views.ws import WSHandler
from bokeh.util.token import get_session_id
from tornado.httputil import HTTPServerRequest
from tornado.web import HTTPError, RequestHandler

# How a request can name a Bokeh session (query arguments, and a header).
SESSION_ARGUMENTS = ("bokeh-session-id", "bokeh-token")
SESSION_HEADER = "Bokeh-Session-Id"

# The signed-in user behind each request the auth provider has seen. A session keeps
# the request that created it, so this lives exactly as long as the session does.
_REQUEST_USERS: WeakKeyDictionary[HTTPServerRequest, str] = WeakKeyDictionary()


def bokeh_secret_key(cookie_secret: str) -> bytes:
    """The key that signs Bokeh session ids and tokens, derived from the cookie secret.

    One secret to keep (the cookie secret, with the other local secrets), two
    uses kept apart: a Bokeh token never verifies as a cookie or the other way round.
    """
    key = hmac.new(cookie_secret.encode(), b"bokeh-session-ids", hashlib.sha256).hexdigest()
    return key.encode()


class SessionRefused(HTTPError):
    """A request that would reach a page session it may not (answered 403)."""

    def __init__(self, reason: str) -> None:
        super().__init__(403, reason=reason)


def claim(handler: RequestHandler, user_id: str) -> None:
    """Record that `user_id` is behind this request; refuse it if it would reach another's session.

    Raises SessionRefused (403) for a page request that names a session, and for
    a websocket whose session exists and was created for someone else.
    """
    request = handler.request
    _REQUEST_USERS[request] = user_id
    if isinstance(handler, WSHandler):
        session_id = _websocket_session_id(request)
        if session_id is None:
            return  # Bokeh refuses a websocket without a token itself
        owner = _session_owner(handler.application_context, session_id)
        if owner is not None and owner != user_id:
            raise SessionRefused("this page session belongs to another user")
        return
    if SESSION_HEADER in request.headers or any(a in request.arguments for a in SESSION_ARGUMENTS):
        raise SessionRefused("a page request may not name a page session")


def _websocket_session_id(request: HTTPServerRequest) -> str | None:
    """The session id in a Bokeh websocket's token (`Sec-WebSocket-Protocol: bokeh, <token>`)."""
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    if len(protocols) != 2 or protocols[0] != "bokeh":
        return None
    try:
        return str(get_session_id(protocols[1]))
    except Exception:  # not a token at all: Bokeh refuses it when the socket opens
        return None


_UNKNOWN_OWNER = "\0unknown"  # a session whose creator is not on record: no one may join it


def _session_owner(application_context: Any, session_id: str) -> str | None:
    """Who created the session (None: no such session yet, so this websocket creates it)."""
    try:
        session = application_context.get_session(session_id)
    except ProtocolError:
        return None
    context = session.document.session_context
    proxy = getattr(context, "request", None)
    request = getattr(proxy, "_request", None)  # Bokeh keeps the creating request behind a proxy
    if request is None:
        return _UNKNOWN_OWNER
    return _REQUEST_USERS.get(request, _UNKNOWN_OWNER)
