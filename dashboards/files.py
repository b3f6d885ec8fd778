"""`/files/<bucket>/<path>`: stored objects streamed to their signed-in owner (or whoever RLS allows).

The object store has no public URLs; the browser gets audio, avatars and
exports through this handler, which looks them up under the viewer's RLS
identity, so a link shared with someone else opens nothing for them. Objects
are streamed in chunks (an export can be 200 MiB) after the pooled connection
is given back, and a response whose bytes no longer match the recorded digest
is cut short, never completed.
"""

from __future__ import annotations

from urllib.parse import quote

from tornado.web import HTTPError, RequestHandler

from dashboards.context import web_context
from workbench.auth.web_sessions import COOKIE_NAME
from workbench.db.errors import NotFound
from workbench.storage import open_store

BUCKETS = ("audio", "avatars", "exports", "reports")


class FileHandler(RequestHandler):
    """GET a stored object the viewer may read."""

    async def get(self, bucket: str, path: str) -> None:
        if bucket not in BUCKETS:
            raise HTTPError(404)
        context = web_context()
        session = await context.resolve(self.get_cookie(COOKIE_NAME))
        if session is None:
            raise HTTPError(401)
        store = open_store(context.settings)
        try:
            async with context.as_user(session) as conn:
                stored = await store.stat(conn, bucket=bucket, path=path)  # type: ignore[arg-type]
        except NotFound:
            raise HTTPError(404) from None
        self.set_header("Content-Type", stored.content_type)
        self.set_header("Content-Length", stored.size_bytes)
        self.set_header("Cache-Control", "private, no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        if bucket == "reports":
            # A report is HTML with scripts (its plots): a sandbox gives it an origin of
            # its own, so it can draw but never reach this site's cookies or pages.
            self.set_header("Content-Security-Policy", "sandbox allow-scripts")
        if bucket == "exports":
            self.set_header("Content-Disposition", attachment(path.rsplit("/", 1)[-1]))
        # A mismatch raises after the last good chunk: Tornado then drops the connection
        # short of the declared length, so the browser sees a failed download.
        async for chunk in store.stream(stored):
            self.write(chunk)
            await self.flush()


def attachment(filename: str) -> str:
    """A Content-Disposition for a download named `filename`, whatever characters it holds.

    The name is percent-encoded (RFC 6266's `filename*`), with a plain-ASCII
    fallback, so a quote or a semicolon in a stored path cannot end the header's value.
    """
    fallback = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def file_routes() -> list[tuple[str, type[RequestHandler]]]:
    """Tornado routes of the file handler."""
    return [(r"/files/([a-z]+)/(.+)", FileHandler)]


def file_url(bucket: str, path: str) -> str:
    """The page-relative URL of a stored object, percent-encoded.

    Encoded, a stored path (which the user names, e.g. an avatar's file name) holds
    no quote, angle bracket, space or parenthesis, so it cannot leave the HTML
    attribute or the Markdown link it is written into; Tornado decodes it again.
    """
    return f"/files/{bucket}/{quote(path, safe='/')}"
