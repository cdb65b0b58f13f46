"""The blob store port: the file system adapter and the S3 adapter (against a real S3 API server,
moto, on 127.0.0.1) behave alike — streamed writes that are atomic, ranged reads, deletes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from correspondence.adapters.blobs import (
    BlobError,
    BlobLocationError,
    BlobNotFound,
    BlobStore,
    FileBlobStore,
    S3BlobStore,
)
from tests.attachment_fixtures import S3_KEY_ID, S3_SECRET, blob_files, free_port, s3_keys, s3_pending_uploads

MiB = 1024 * 1024


class Boom(Exception):
    pass


async def stream(data: bytes, piece: int = 64 * 1024, fail_after: int | None = None) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), piece):
        if fail_after is not None and offset >= fail_after:
            raise Boom()
        yield data[offset : offset + piece]


async def read(store: BlobStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.get(key, start, end)])


@pytest.fixture
def file_store(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest) -> BlobStore:
    name = "file_store" if request.param == "file" else "s3_store"
    found: BlobStore = request.getfixturevalue(name)
    return found


async def test_a_streamed_object_round_trips(store: BlobStore) -> None:
    data = os.urandom(9 * MiB + 123)  # more than one S3 part, and not a whole number of blocks
    assert await store.put("attachments/a", stream(data)) == len(data)
    assert await store.size("attachments/a") == len(data)
    assert await read(store, "attachments/a") == data


async def test_ranges_are_read_as_asked(store: BlobStore) -> None:
    data = os.urandom(3 * MiB)
    await store.put("attachments/r", stream(data))
    assert await read(store, "attachments/r", 10, 20) == data[10:20]
    assert await read(store, "attachments/r", 2 * MiB) == data[2 * MiB :]
    assert await read(store, "attachments/r", MiB - 1, 2 * MiB + 1) == data[MiB - 1 : 2 * MiB + 1]


async def test_a_failing_stream_leaves_nothing(store: BlobStore) -> None:
    data = os.urandom(12 * MiB)
    with pytest.raises(Boom):
        await store.put("attachments/f", stream(data, fail_after=10 * MiB))
    assert await store.size("attachments/f") is None
    with pytest.raises(BlobNotFound):
        await read(store, "attachments/f")


async def test_a_failed_write_does_not_replace_the_previous_object(store: BlobStore) -> None:
    await store.put("attachments/k", stream(b"first version"))
    with pytest.raises(Boom):
        await store.put("attachments/k", stream(os.urandom(MiB), fail_after=512 * 1024))
    assert await read(store, "attachments/k") == b"first version"


async def test_deleting_is_idempotent(store: BlobStore) -> None:
    await store.put("attachments/d", stream(b"bytes"))
    await store.delete("attachments/d")
    await store.delete("attachments/d")
    assert await store.size("attachments/d") is None


async def test_file_store_keeps_no_temporary_file_after_a_failure(file_store: FileBlobStore) -> None:
    with pytest.raises(Boom):
        await file_store.put("attachments/x", stream(os.urandom(4 * MiB), fail_after=2 * MiB))
    assert blob_files(file_store) == []
    await file_store.put("attachments/y", stream(b"ok"))
    assert [p.name for p in blob_files(file_store)] == ["y"]


def test_file_store_refuses_keys_outside_its_root(file_store: FileBlobStore) -> None:
    for key in ("../escape", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(ValueError):
            file_store.path(key)


async def test_a_file_store_that_cannot_make_its_directory_reports_the_location(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's root should be")
    with pytest.raises(BlobLocationError):
        await FileBlobStore(blocker / "blobs").put("attachments/z", stream(b"data"))


async def test_s3_failure_leaves_no_object_and_no_pending_upload(
    s3_store: S3BlobStore, moto_endpoint: str, s3_bucket: str
) -> None:
    with pytest.raises(Boom):
        await s3_store.put("attachments/p", stream(os.urandom(20 * MiB), fail_after=17 * MiB))
    assert s3_keys(moto_endpoint, s3_bucket) == []
    assert s3_pending_uploads(moto_endpoint, s3_bucket) == []


async def test_s3_keys_live_under_the_configured_prefix(moto_endpoint: str, s3_bucket: str) -> None:
    store = S3BlobStore(
        s3_bucket,
        endpoint=moto_endpoint,
        access_key_id=S3_KEY_ID,
        secret_access_key=S3_SECRET,
        prefix="/tenant-a/",
    )
    await store.put("attachments/q", stream(b"prefixed"))
    assert s3_keys(moto_endpoint, s3_bucket) == ["tenant-a/attachments/q"]
    assert await read(store, "attachments/q") == b"prefixed"


async def test_s3_missing_bucket_is_a_location_error(moto_endpoint: str) -> None:
    store = S3BlobStore(
        "no-such-bucket", endpoint=moto_endpoint, access_key_id=S3_KEY_ID, secret_access_key=S3_SECRET
    )
    with pytest.raises(BlobLocationError):
        await store.put("attachments/m", stream(b"data"))


async def test_s3_unreachable_is_a_storage_error() -> None:
    store = S3BlobStore(
        "bucket",
        endpoint=f"http://127.0.0.1:{free_port()}",
        access_key_id=S3_KEY_ID,
        secret_access_key=S3_SECRET,
        retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=2)},
    )
    with pytest.raises(BlobError) as caught:
        await store.put("attachments/u", stream(b"data"))
    assert not isinstance(caught.value, BlobLocationError)


async def test_the_configuration_picks_the_store(tmp_path: Path, moto_endpoint: str, s3_bucket: str) -> None:
    from pydantic import ValidationError

    from correspondence.adapters import open_blob_store
    from correspondence.config import Settings

    default = await open_blob_store(Settings(data_dir=tmp_path))
    assert isinstance(default, FileBlobStore) and default.root == (tmp_path / "blobs").resolve()
    s3 = await open_blob_store(
        Settings(
            storage="s3",
            s3_bucket=s3_bucket,
            s3_endpoint=moto_endpoint,
            s3_access_key_id=S3_KEY_ID,
            s3_secret_access_key=S3_SECRET,
        )
    )
    await s3.put("attachments/c", stream(b"configured"))
    assert await read(s3, "attachments/c") == b"configured"
    with pytest.raises(ValidationError, match="CORRESPONDENCE_S3_BUCKET"):
        Settings(storage="s3")
