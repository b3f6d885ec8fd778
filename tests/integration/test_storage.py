"""The object store: bytes behind fsspec, metadata under RLS, limits from the database, no half-writes."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import fsspec
import httpx
import numpy as np
import psycopg
import pytest
import soundfile

from tests.support.images import PNG_1PX
from tests.support.personas import Persona, create_user, session_as
from tests.support.ports import free_port
from workbench.config import Settings
from workbench.db.errors import InvalidInput, NotFound
from workbench.storage import ObjectStore, UploadRejected, open_store

pytestmark = pytest.mark.integration


def wav_bytes(seconds: float = 0.5, sample_rate_hz: int = 16_000) -> bytes:
    t = np.arange(int(seconds * sample_rate_hz)) / sample_rate_hz
    buffer = io.BytesIO()
    soundfile.write(
        buffer, 0.2 * np.sin(2 * np.pi * 220 * t), sample_rate_hz, format="WAV", subtype="PCM_16"
    )
    return buffer.getvalue()


@pytest.fixture  # per test: the folder and S3 runs of a test store the same names
def people(app_db: str, jwt_secret: str) -> dict[str, Persona]:
    with psycopg.connect(app_db, autocommit=True) as conn:
        return {
            name: create_user(conn, name=name, role=role, jwt_secret=jwt_secret)
            for name, role in (
                ("owner", "user"),
                ("stranger", "user"),
                ("researcher", "researcher"),
                ("researcher2", "researcher"),
            )
        }


# Around the store's metadata, straight at its backend (a folder or an S3 bucket): what a
# leak or a half-write would leave, and bytes changed behind its back.
def _backing_bytes(store: ObjectStore, bucket: str, path: str) -> bytes | None:
    location = store._location(bucket, path)
    return store._fs.cat_file(location) if store._fs.exists(location) else None  # type: ignore[no-any-return]


def _overwrite(store: ObjectStore, bucket: str, path: str, data: bytes) -> None:
    store._fs.pipe_file(store._location(bucket, path), data)


def _anything_stored(store: ObjectStore) -> bool:
    return store._fs.exists(store._root) and bool(store._fs.find(store._root))


async def _avatars_of(conn: psycopg.AsyncConnection[Any], owner_id: Any) -> int:
    """How many avatar rows the caller sees for `owner_id`."""
    cur = await conn.execute(
        "select count(*) from public.storage_objects where bucket = 'avatars' and owner_id = %s",
        [owner_id],
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3 API server on loopback (moto's), standing in for Supabase Storage's S3 endpoint.

    A process of its own: the streaming test measures this process's memory.
    """
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, "moto's S3 server exited"
                assert time.monotonic() < deadline, "moto's S3 server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """The store on a local folder, and on S3 through s3fs, configured as a deployment is."""
    if request.param == "folder":
        return ObjectStore(str(tmp_path / "objects"))
    bucket = f"workbench-{uuid4().hex[:12]}"
    settings = Settings(
        storage_url=f"s3://{bucket}/objects",
        s3_endpoint_url=request.getfixturevalue("s3_endpoint"),
        s3_region="eu-central-1",
        s3_access_key_id="test-key",
        s3_secret_access_key="test-secret",
    )
    fsspec.filesystem("s3", **settings.storage_options()).mkdir(bucket)
    return open_store(settings)


async def test_round_trip_and_visibility(
    app_db: str, people: dict[str, Persona], store: ObjectStore, tmp_path: Path
) -> None:
    owner = people["owner"]
    assert owner.id is not None
    data = wav_bytes()
    async with session_as(app_db, owner) as conn:
        stored = await store.put(
            conn,
            bucket="audio",
            owner_id=owner.id,
            name="conv-1/turn-0.wav",
            data=data,
            content_type="audio/wav",
        )
    assert stored.path == f"{owner.id}/conv-1/turn-0.wav"
    assert _backing_bytes(store, "audio", stored.path) == data
    async with session_as(app_db, owner) as conn:
        assert await store.read(conn, bucket="audio", path=stored.path) == data
    async with session_as(app_db, people["researcher"]) as conn:
        assert (
            await store.read(conn, bucket="audio", path=stored.path) == data
        )  # researchers study audio
    async with session_as(app_db, people["stranger"]) as conn:
        with pytest.raises(NotFound):
            await store.read(conn, bucket="audio", path=stored.path)
        with pytest.raises(NotFound):
            await store.delete(conn, bucket="audio", path=stored.path)
    async with session_as(app_db, owner) as conn:
        await store.delete(conn, bucket="audio", path=stored.path)
    assert _backing_bytes(store, "audio", stored.path) is None


@pytest.mark.parametrize(
    ("bucket", "name", "data", "content_type", "message"),
    [
        ("avatars", "me.png", PNG_1PX + b"\0" * (2 * 1024 * 1024), "image/png", "at most 2 MiB"),
        ("avatars", "me.gif", b"GIF89a....", "image/gif", "avatars accepts image/png"),
        ("avatars", "me.png", b"\xff\xd8\xff jpeg bytes", "image/png", "not valid image/png"),
        (
            "audio",
            "x.wav",
            b"RIFF\x10\x00\x00\x00WAVEgarbage-not-a-wav",
            "audio/wav",
            "not valid audio/wav",
        ),
        ("audio", "empty.wav", b"", "audio/wav", "not valid audio/wav"),
        ("audio", "../escape.wav", wav_bytes(0.1), "audio/wav", "not allowed"),
        ("audio", "a/../../b.wav", wav_bytes(0.1), "audio/wav", "not allowed"),
        ("audio", "/etc/passwd", wav_bytes(0.1), "audio/wav", "not allowed"),
        ("audio", "sp ace.wav", wav_bytes(0.1), "audio/wav", "not allowed"),
        ("exports", "dump.json", b"{not json", "application/json", "not valid application/json"),
        ("reports", "r.html", b"MZ\x90\x00 not a page", "text/html", "not valid text/html"),
        ("secrets", "x.txt", b"hello", "text/plain", "unknown bucket"),
    ],
)
async def test_bad_uploads_are_refused_and_leave_nothing(
    app_db: str,
    people: dict[str, Persona],
    store: ObjectStore,
    tmp_path: Path,
    bucket: str,
    name: str,
    data: bytes,
    content_type: str,
    message: str,
) -> None:
    owner = people["owner"]
    assert owner.id is not None
    async with session_as(app_db, owner) as conn:
        with pytest.raises(UploadRejected, match=message):
            await store.put(
                conn,
                bucket=bucket,
                owner_id=owner.id,
                name=name,
                data=data,
                content_type=content_type,
            )  # type: ignore[arg-type]
        assert await _avatars_of(conn, owner.id) == 0
    assert not _anything_stored(store)


async def test_cannot_store_under_another_users_prefix(
    app_db: str, people: dict[str, Persona], store: ObjectStore
) -> None:
    stranger = people["stranger"]
    assert stranger.id is not None
    with pytest.raises(Exception, match="row-level security"):
        async with session_as(app_db, people["owner"]) as conn:
            await store.put(
                conn,
                bucket="avatars",
                owner_id=stranger.id,
                name="me.png",
                data=PNG_1PX,
                content_type="image/png",
            )


async def test_a_failed_write_rolls_the_metadata_back(
    app_db: str, people: dict[str, Persona], tmp_path: Path
) -> None:
    owner = people["owner"]
    assert owner.id is not None
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the store expects a folder")
    store = ObjectStore(str(blocker))
    with pytest.raises(OSError, match=r"blocked"):
        async with session_as(app_db, owner) as conn:
            await store.put(
                conn,
                bucket="avatars",
                owner_id=owner.id,
                name="a.png",
                data=PNG_1PX,
                content_type="image/png",
            )
    async with session_as(app_db, owner) as conn:
        assert await _avatars_of(conn, owner.id) == 0


async def test_large_objects_stream_in_chunks_and_changed_bytes_never_complete(
    app_db: str, people: dict[str, Persona], store: ObjectStore, tmp_path: Path
) -> None:
    """`/files` streams: a 40 MiB recording is served chunk by chunk, memory one chunk deep."""
    owner = people["owner"]
    assert owner.id is not None
    data = wav_bytes(seconds=1300)  # ~40 MiB of 16 kHz PCM
    async with session_as(app_db, owner) as conn:
        stored = await store.put(
            conn,
            bucket="audio",
            owner_id=owner.id,
            name="long.wav",
            data=data,
            content_type="audio/wav",
        )
    tracemalloc.start()
    try:
        sizes, digest = [], hashlib.sha256()
        async for chunk in store.stream(stored, chunk_bytes=1 << 20):
            sizes.append(len(chunk))
            digest.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert max(sizes) <= 1 << 20
    assert sum(sizes) == len(data)
    assert peak < 8 << 20, f"streaming held {peak / 2**20:.0f} MiB at once"
    # Someone changed the bytes behind the store's back: the stream fails at its end,
    # so an HTTP response with the recorded length never completes.
    _overwrite(store, "audio", stored.path, data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(InvalidInput, match="does not match its recorded digest"):
        async for _ in store.stream(stored):
            pass
    _overwrite(store, "audio", stored.path, data + b"extra")
    received = 0
    with pytest.raises(InvalidInput):
        async for chunk in store.stream(stored):
            received += len(chunk)
    assert received <= len(data)  # never more than the declared length


async def test_reports_are_written_by_researchers_and_read_by_researchers(
    app_db: str, people: dict[str, Persona], store: ObjectStore
) -> None:
    page = b"<!doctype html><html><body>WER 0.1</body></html>"
    owner, researcher = people["owner"], people["researcher"]
    assert owner.id is not None
    assert researcher.id is not None
    with pytest.raises(Exception, match="row-level security"):
        async with session_as(app_db, owner) as conn:
            await store.put(
                conn,
                bucket="reports",
                owner_id=owner.id,
                name="mine.html",
                data=page,
                content_type="text/html",
            )
    async with session_as(app_db, researcher) as conn:
        stored = await store.put(
            conn,
            bucket="reports",
            owner_id=researcher.id,
            name="wer.html",
            data=page,
            content_type="text/html",
        )
    other = people["researcher2"]
    async with session_as(app_db, other) as conn:
        assert await store.read(conn, bucket="reports", path=stored.path) == page  # shared
    async with session_as(app_db, owner) as conn:
        with pytest.raises(NotFound):
            await store.read(conn, bucket="reports", path=stored.path)
