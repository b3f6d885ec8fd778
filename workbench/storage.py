"""The object store: recorded audio, avatars and exports behind one fsspec URL.

Bytes live at `<STORAGE_URL>/<bucket>/<owner id>/<name>`; every object has a
metadata row in `public.storage_objects`, written under the caller's identity,
so RLS decides who may store, list, read and delete. Limits (size, content
type) come from the database's `storage_limits()`, the one place they are set.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
from collections.abc import AsyncIterator
from functools import partial
from typing import Any, Literal
from uuid import UUID

import fsspec
import soundfile
from psycopg import AsyncConnection
from psycopg.rows import class_row

from workbench.config import Settings
from workbench.db.errors import InvalidInput, NotFound, translated
from workbench.db.models import StoredObject

Bucket = Literal["audio", "avatars", "exports", "reports"]
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}){0,6}$")
_OBJECT = "id, bucket, path, owner_id, content_type, size_bytes, sha256, created_at"


class UploadRejected(InvalidInput):
    """The upload is too large, of a type the bucket refuses, malformed, or badly named."""


def _looks_like(content_type: str, data: bytes) -> bool:
    """True if the bytes are what the content type claims (magic numbers, or a parse)."""
    if content_type == "audio/wav":
        if not (data[:4] == b"RIFF" and data[8:12] == b"WAVE"):
            return False
        try:
            soundfile.info(io.BytesIO(data))
        except (RuntimeError, soundfile.LibsndfileError):
            return False
        return True
    if content_type == "application/json":
        try:
            json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return False
        return True
    if content_type == "text/html":
        try:
            text = data[:1024].decode("utf-8", errors="strict").lstrip().lower()
        except UnicodeDecodeError:
            return False
        return text.startswith(("<!doctype html", "<html"))
    if content_type == "text/csv":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    magic = {
        "audio/ogg": data[:4] == b"OggS",
        "audio/webm": data[:4] == b"\x1a\x45\xdf\xa3",
        "audio/flac": data[:4] == b"fLaC",
        "image/png": data[:8] == b"\x89PNG\r\n\x1a\n",
        "image/jpeg": data[:3] == b"\xff\xd8\xff",
        "image/webp": data[:4] == b"RIFF" and data[8:12] == b"WEBP",
        "application/vnd.apache.parquet": data[:4] == b"PAR1" and data[-4:] == b"PAR1",
    }
    return magic.get(content_type, False)


class ObjectStore:
    """Objects behind `url` (a local folder by default, `s3://...` on Supabase Storage)."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        self._fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self._root = root.rstrip("/")

    def _location(self, bucket: str, path: str) -> str:
        return f"{self._root}/{bucket}/{path}"

    async def put(
        self,
        conn: AsyncConnection[Any],
        *,
        bucket: Bucket,
        owner_id: UUID,
        name: str,
        data: bytes,
        content_type: str,
    ) -> StoredObject:
        """Store `data` as `<owner_id>/<name>` in `bucket`, with its metadata row.

        `conn` must be in an identity session (the owner's, or the service's
        acting for the owner). Raises UploadRejected for a bad upload, before
        anything is written; if writing the bytes fails the row is rolled back.
        """
        if not _NAME.match(name) or ".." in name.split("/"):
            raise UploadRejected(
                f"object name {name!r} is not allowed: use letters, digits, '._-' and '/'"
            )
        limits = await self._limits(conn, bucket)
        max_bytes, content_types = limits
        if content_type not in content_types:
            raise UploadRejected(
                f"{bucket} accepts {', '.join(content_types)}, not {content_type!r}"
            )
        if len(data) > max_bytes:
            raise UploadRejected(
                f"{bucket} objects are at most {max_bytes // (1024 * 1024)} MiB; this is {len(data)} bytes"
            )
        if not data or not _looks_like(content_type, data):
            raise UploadRejected(f"the data is not valid {content_type}")
        path = f"{owner_id}/{name}"
        digest = hashlib.sha256(data).hexdigest()
        location = self._location(bucket, path)
        async with conn.transaction():
            with translated():
                async with conn.cursor(row_factory=class_row(StoredObject)) as cur:
                    await cur.execute(
                        f"""insert into public.storage_objects (bucket, path, owner_id, content_type, size_bytes, sha256)
                            values (%s, %s, %s, %s, %s, %s) returning {_OBJECT}""",
                        [bucket, path, owner_id, content_type, len(data), digest],
                    )
                    stored = await cur.fetchone()
            assert stored is not None
            await asyncio.to_thread(self._write, location, data)
        return stored

    def _write(self, location: str, data: bytes) -> None:
        self._fs.makedirs(location.rsplit("/", 1)[0], exist_ok=True)
        with self._fs.open(location, "wb") as handle:
            handle.write(data)

    async def _limits(self, conn: AsyncConnection[Any], bucket: str) -> tuple[int, list[str]]:
        cur = await conn.execute(
            "select max_bytes, content_types from public.storage_limits(%s)", [bucket]
        )
        row = await cur.fetchone()
        if row is None or row[0] is None:
            raise UploadRejected(f"unknown bucket {bucket!r}")
        return int(row[0]), list(row[1])

    async def stat(self, conn: AsyncConnection[Any], *, bucket: Bucket, path: str) -> StoredObject:
        """Metadata of an object the caller may see."""
        if "\x00" in path:  # Postgres text cannot hold it, so no stored path does
            raise NotFound(f"no object {bucket}/{path!r}")
        async with conn.cursor(row_factory=class_row(StoredObject)) as cur:
            await cur.execute(
                f"select {_OBJECT} from public.storage_objects where bucket = %s and path = %s",
                [bucket, path],
            )
            stored = await cur.fetchone()
        if stored is None:
            raise NotFound(f"no object {bucket}/{path} (or it is not visible to this user)")
        return stored

    async def read(self, conn: AsyncConnection[Any], *, bucket: Bucket, path: str) -> bytes:
        """The bytes of an object the caller may see, checked against its digest (small objects; else `stream`)."""
        stored = await self.stat(conn, bucket=bucket, path=path)
        data: bytes = await asyncio.to_thread(
            self._fs.cat_file, self._location(bucket, stored.path)
        )
        if hashlib.sha256(data).hexdigest() != stored.sha256:
            raise InvalidInput(
                f"{bucket}/{path} does not match its recorded digest: the stored bytes changed"
            )
        return data

    async def stream(
        self, stored: StoredObject, *, chunk_bytes: int = 1 << 20
    ) -> AsyncIterator[bytes]:
        """The bytes of an object (from `stat`) in chunks: memory stays one chunk, whatever its size.

        The digest and size are checked as it goes; on a mismatch InvalidInput is
        raised after the last chunk, so a consumer that declared the size (an HTTP
        Content-Length) never completes a response with changed bytes.
        """
        # No read-ahead cache: on S3 each read is one ranged GET of a chunk, not a
        # block of the filesystem's default size held beside it.
        handle = await asyncio.to_thread(
            partial(self._fs.open, block_size=chunk_bytes, cache_type="none"),
            self._location(stored.bucket, stored.path),
            "rb",
        )
        digest, sent = hashlib.sha256(), 0
        try:
            while chunk := await asyncio.to_thread(
                handle.read, min(chunk_bytes, stored.size_bytes - sent + 1)
            ):
                digest.update(chunk)
                sent += len(chunk)
                if sent > stored.size_bytes:
                    break
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)
        if sent != stored.size_bytes or digest.hexdigest() != stored.sha256:
            raise InvalidInput(
                f"{stored.bucket}/{stored.path} does not match its recorded digest: the stored bytes changed"
            )

    async def delete(self, conn: AsyncConnection[Any], *, bucket: Bucket, path: str) -> None:
        """Delete an object the caller owns (row first; bytes after the row is gone)."""
        async with conn.transaction():
            cur = await conn.execute(
                "delete from public.storage_objects where bucket = %s and path = %s returning path",
                [bucket, path],
            )
            if await cur.fetchone() is None:
                raise NotFound(f"no object {bucket}/{path} that this user may delete")
        location = self._location(bucket, path)
        if await asyncio.to_thread(self._fs.exists, location):
            await asyncio.to_thread(self._fs.rm_file, location)


def open_store(settings: Settings) -> ObjectStore:
    """The store STORAGE_URL names, with its options (an S3 endpoint's region and keys)."""
    if settings.storage_url is None:
        raise ValueError("no STORAGE_URL: run `./dev up` (local) or set STORAGE_URL (hosted)")
    return ObjectStore(settings.storage_url, **settings.storage_options())
