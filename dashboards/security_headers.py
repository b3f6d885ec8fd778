"""Security headers on every response of the web server, whichever handler wrote it.

Panel's pages, Bokeh's static files, the auth forms and `/files/...` each have
their own Tornado handler; an output transform is the one place every response
passes through, so no handler can forget them.

The content security policy restricts what does not break a Bokeh page: who may
frame it (no one: no clickjacking), where forms may post and what `<base>` may
say (this site only), and plugins (none). Scripts and connections are left
open: Bokeh renders each page with inline scripts and evaluated code, and the
Conversation page connects to the LiveKit server, which runs on its own origin.
"""

from __future__ import annotations

from typing import Any

from tornado.httputil import HTTPHeaders
from tornado.web import OutputTransform

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'self'",
        "object-src 'none'",
    ]
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # a page's URL (its query) stays on this site
}


class SecurityHeaders(OutputTransform):
    """Adds `HEADERS` to every response (a Tornado application's `transforms`)."""

    def transform_first_chunk(
        self,
        status_code: int,
        headers: HTTPHeaders,
        chunk: bytes,
        finishing: bool,
    ) -> tuple[int, HTTPHeaders, bytes]:
        for name, value in HEADERS.items():
            headers.setdefault(name, value)
        return status_code, headers, chunk


def transforms() -> list[Any]:
    """The web server's output transforms (Tornado's `transforms` setting)."""
    return [SecurityHeaders]
