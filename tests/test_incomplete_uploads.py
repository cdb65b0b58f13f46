"""What a writer killed mid-upload leaves outside any object — a temporary file of the file store,
an incomplete S3 multipart upload — is removed by the pending-blob sweeper once the writer has
been silent long enough; a live writer's is never touched. Against the real file store and a real
S3 API server (moto); the hand-signed S3 requests are checked against botocore's signer."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from correspondence.adapters import blobs as blobs_module
from correspondence.adapters.blobs import FileBlobStore, S3BlobStore
from correspondence.adapters.s3_uploads import (
    Credentials,
    MultipartUploads,
    S3RequestError,
    parse_listing,
    sign,
)
from correspondence.attachment.use_cases.pending_blobs import (
    SILENT_AFTER,
    record_pending,
    sweep_pending_blobs,
)
from correspondence.kit import clock
from correspondence.services import Services
from tests.attachment_fixtures import S3_KEY_ID, S3_SECRET, s3_client, s3_pending_uploads

MiB = 1024 * 1024


async def nobody_writes(keys: list[str]) -> set[str]:
    return set()


def abandon_multipart_upload(endpoint: str, bucket: str, key: str) -> str:
    """What a writer killed mid-upload leaves: a multipart upload begun, one part stored."""
    client = s3_client(endpoint)
    upload_id: str = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=os.urandom(5 * MiB))
    return upload_id


def s3_store_for(endpoint: str, bucket: str, prefix: str = "") -> S3BlobStore:
    return S3BlobStore(
        bucket,
        endpoint=endpoint,
        access_key_id=S3_KEY_ID,
        secret_access_key=S3_SECRET,
        region="us-east-1",
        prefix=prefix,
    )


# --- S3 -------------------------------------------------------------------------------------------


async def test_an_abandoned_multipart_upload_is_aborted_and_a_live_one_kept(
    moto_endpoint: str, s3_bucket: str
) -> None:
    store = s3_store_for(moto_endpoint, s3_bucket)
    abandon_multipart_upload(moto_endpoint, s3_bucket, "attachments/dead")
    abandon_multipart_upload(moto_endpoint, s3_bucket, "attachments/alive")
    abandon_multipart_upload(moto_endpoint, s3_bucket, "elsewhere/not-ours")
    asked: list[list[str]] = []

    async def in_use(keys: list[str]) -> set[str]:
        asked.append(keys)
        return {"attachments/alive"}

    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await store.sweep_incomplete(older_than=later, under="attachments/", in_use=in_use) == 1
    assert asked == [["attachments/alive", "attachments/dead"]]
    assert sorted(s3_pending_uploads(moto_endpoint, s3_bucket)) == ["attachments/alive", "elsewhere/not-ours"]


async def test_a_recent_multipart_upload_is_kept_whatever_its_key(moto_endpoint: str, s3_bucket: str) -> None:
    store = s3_store_for(moto_endpoint, s3_bucket)
    abandon_multipart_upload(moto_endpoint, s3_bucket, "attachments/just-begun")
    # moto answers every upload `Initiated` 2010-11-10T20:48:33Z, so "recent" is relative to that.
    initiated = datetime(2010, 11, 10, 20, 48, 33, tzinfo=UTC)
    sooner = initiated - timedelta(seconds=1)
    assert await store.sweep_incomplete(older_than=sooner, under="attachments/", in_use=nobody_writes) == 0
    assert s3_pending_uploads(moto_endpoint, s3_bucket) == ["attachments/just-begun"]
    later = initiated + timedelta(seconds=1)
    assert await store.sweep_incomplete(older_than=later, under="attachments/", in_use=nobody_writes) == 1
    assert s3_pending_uploads(moto_endpoint, s3_bucket) == []


async def test_the_store_prefix_bounds_the_sweep_and_keys_are_asked_without_it(
    moto_endpoint: str, s3_bucket: str
) -> None:
    store = s3_store_for(moto_endpoint, s3_bucket, prefix="tenant-a")
    abandon_multipart_upload(moto_endpoint, s3_bucket, "tenant-a/attachments/dead")
    abandon_multipart_upload(moto_endpoint, s3_bucket, "tenant-b/attachments/dead")
    asked: list[str] = []

    async def in_use(keys: list[str]) -> set[str]:
        asked.extend(keys)
        return set()

    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await store.sweep_incomplete(older_than=later, under="attachments/", in_use=in_use) == 1
    assert asked == ["attachments/dead"]
    assert s3_pending_uploads(moto_endpoint, s3_bucket) == ["tenant-b/attachments/dead"]


async def test_listing_pages_through_every_upload(moto_endpoint: str, s3_bucket: str) -> None:
    client = s3_client(moto_endpoint)
    keys = [f"attachments/{i:02}" for i in range(5)] + ["attachments/02"]  # two uploads of one key
    for key in keys:
        client.create_multipart_upload(Bucket=s3_bucket, Key=key)
    credentials = Credentials(S3_KEY_ID, S3_SECRET)
    uploads = MultipartUploads(
        s3_bucket, endpoint=moto_endpoint, region="us-east-1", credentials=credentials, page_size=2
    )
    found = await uploads.find("attachments/")
    assert sorted(u.key for u in found) == sorted(keys)
    assert len({u.upload_id for u in found}) == len(keys)
    assert await uploads.abort(found) == len(keys)
    assert await uploads.abort(found[:1]) == 0  # already gone: another sweeper took it
    assert s3_pending_uploads(moto_endpoint, s3_bucket) == []


async def test_without_keys_the_s3_sweep_is_left_to_the_lifecycle_rule(
    moto_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    store = S3BlobStore(s3_bucket, endpoint=moto_endpoint)
    abandon_multipart_upload(moto_endpoint, s3_bucket, "attachments/dead")
    later = datetime.now(UTC) + timedelta(minutes=1)
    for _ in range(2):
        assert await store.sweep_incomplete(older_than=later, under="attachments/", in_use=nobody_writes) == 0
    assert [r.message for r in caplog.records].count(
        "no S3 keys (configured or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY): incomplete multipart"
        " uploads of killed writers are left to the bucket's lifecycle rule"
    ) == 1
    # The AWS_* variables are used when no keys are configured.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    assert await store.sweep_incomplete(older_than=later, under="attachments/", in_use=nobody_writes) == 1


async def test_the_sweeper_aborts_a_killed_writers_upload_once_its_record_is_swept(
    services: Services, moto_endpoint: str, s3_bucket: str
) -> None:
    store = s3_store_for(moto_endpoint, s3_bucket)
    key = f"attachments/{uuid.uuid4()}.{uuid.uuid4()}"
    await record_pending(services.pool, [key])  # committed before the writer's first byte
    abandon_multipart_upload(moto_endpoint, s3_bucket, key)

    # Its record says the writer may still be alive: kept, even on a clock moved on.
    clock.shift(SILENT_AFTER - timedelta(minutes=1))
    await sweep_pending_blobs(services.pool, store, now=clock.now())
    assert s3_pending_uploads(moto_endpoint, s3_bucket) == [key]

    # Silent past the limit: the record is swept, then the upload aborted.
    clock.shift(timedelta(minutes=2))
    await sweep_pending_blobs(services.pool, store, now=clock.now())
    assert s3_pending_uploads(moto_endpoint, s3_bucket) == []


async def test_a_failing_s3_listing_does_not_stop_the_record_sweep(
    services: Services, moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = s3_store_for(moto_endpoint, f"missing-{uuid.uuid4().hex[:12]}")  # ListMultipartUploads: 404
    key = f"attachments/{uuid.uuid4()}.{uuid.uuid4()}"
    await record_pending(services.pool, [key])
    clock.shift(SILENT_AFTER + timedelta(minutes=1))
    assert await sweep_pending_blobs(services.pool, store, now=clock.now()) >= 1
    async with services.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM pending_blobs WHERE key = $1", key) == 0
    assert any("could not sweep incomplete uploads" in r.message for r in caplog.records)


# --- the signature and the XML ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "host", "path", "query", "url"),
    [
        (
            "GET",
            "examplebucket.s3.us-east-1.amazonaws.com",
            "/",
            {"uploads": "", "prefix": "att ach/", "key-marker": "a/b~c"},
            "https://examplebucket.s3.us-east-1.amazonaws.com/?uploads&prefix=att%20ach%2F&key-marker=a%2Fb~c",
        ),
        (
            "GET",
            "127.0.0.1:5000",
            "/bkt",
            {"uploads": "", "prefix": "p/attachments/"},
            "http://127.0.0.1:5000/bkt?uploads&prefix=p%2Fattachments%2F",
        ),
        (
            "DELETE",
            "127.0.0.1:5000",
            "/bkt/attachments/x.y",
            {"uploadId": "abc+/="},
            "http://127.0.0.1:5000/bkt/attachments/x.y?uploadId=abc%2B%2F%3D",
        ),
    ],
)
@pytest.mark.parametrize("token", [None, "session-token"])
def test_requests_are_signed_as_botocore_signs_them(
    method: str, host: str, path: str, query: dict[str, str], url: str, token: str | None
) -> None:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    key_id, secret = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    request = AWSRequest(method=method, url=url, headers={"x-amz-content-sha256": empty})
    S3SigV4Auth(BotoCredentials(key_id, secret, token), "s3", "us-east-1").add_auth(request)
    at = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    ours = sign(method, host, path, query, Credentials(key_id, secret, token), "us-east-1", at)
    assert ours["authorization"] == request.headers["Authorization"]


def test_a_listing_with_a_document_type_is_refused() -> None:
    body = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><ListMultipartUploadsResult/>'
    with pytest.raises(S3RequestError, match="document type"):
        parse_listing(body)


def test_a_listing_is_read_with_or_without_the_namespace() -> None:
    for ns in ("", ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'):
        body = (
            f"<ListMultipartUploadsResult{ns}><IsTruncated>true</IsTruncated>"
            "<NextKeyMarker>k2</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>"
            "<Upload><Key>k1</Key><UploadId>u1</UploadId><Initiated>2026-01-02T03:04:05.000Z</Initiated></Upload>"
            "</ListMultipartUploadsResult>"
        ).encode()
        uploads, markers = parse_listing(body)
        assert [(u.key, u.upload_id, u.initiated) for u in uploads] == [
            ("k1", "u1", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
        ]
        assert markers == {"key-marker": "k2", "upload-id-marker": "u2"}


# --- the file store -------------------------------------------------------------------------------


def part_file(store: FileBlobStore, name: str, age: timedelta) -> Path:
    store.incoming.mkdir(parents=True, exist_ok=True)
    path = store.incoming / name
    path.write_bytes(b"half an upload")
    stamp = time.time() - age.total_seconds()
    os.utime(path, (stamp, stamp))
    return path


async def test_temporary_files_untouched_past_the_limit_are_deleted_and_recent_ones_kept(
    tmp_path: Path,
) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    old = part_file(store, f"{uuid.uuid4().hex}.part", timedelta(minutes=11))
    recent = part_file(store, f"{uuid.uuid4().hex}.part", timedelta(minutes=9))
    other = part_file(store, "notes.txt", timedelta(days=1))
    cutoff = datetime.now(UTC) - SILENT_AFTER
    assert await store.sweep_incomplete(older_than=cutoff, under="attachments/", in_use=nobody_writes) == 1
    assert not old.exists() and recent.exists() and other.exists()


async def test_sweepers_running_at_once_delete_each_file_once(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    for _ in range(50):
        part_file(store, f"{uuid.uuid4().hex}.part", timedelta(hours=1))
    cutoff = datetime.now(UTC) - SILENT_AFTER
    counts = await asyncio.gather(
        *(store.sweep_incomplete(older_than=cutoff, under="", in_use=nobody_writes) for _ in range(4))
    )
    assert sum(counts) == 50 and list(store.incoming.iterdir()) == []
    fresh = FileBlobStore(tmp_path / "never-written")  # no .incoming yet
    assert await fresh.sweep_incomplete(older_than=cutoff, under="", in_use=nobody_writes) == 0


async def test_a_slow_writer_keeps_its_temporary_file_fresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blobs_module, "TOUCH_SECONDS", 0.05)
    store = FileBlobStore(tmp_path / "blobs", fsync=False)
    more = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield b"first bytes"  # held in a batch, not written yet: only the touch keeps it fresh
        await more.wait()
        yield b" and the rest"

    writing = asyncio.create_task(store.put("attachments/slow", trickle()))
    while not store.incoming.exists() or not any(store.incoming.iterdir()):
        await asyncio.sleep(0.01)
    (temp,) = store.incoming.iterdir()
    stamp = time.time() - 3600
    os.utime(temp, (stamp, stamp))  # as if nothing had been written for an hour
    await asyncio.sleep(0.3)
    cutoff = datetime.now(UTC) - SILENT_AFTER
    assert await store.sweep_incomplete(older_than=cutoff, under="", in_use=nobody_writes) == 0
    more.set()
    assert await writing == len(b"first bytes and the rest")
    assert (store.root / "attachments" / "slow").read_bytes() == b"first bytes and the rest"


async def test_the_sweeper_deletes_a_killed_writers_temporary_file(
    services: Services, tmp_path: Path
) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    temp = part_file(store, f"{uuid.uuid4().hex}.part", timedelta(0))
    await sweep_pending_blobs(services.pool, store, now=clock.now())
    assert temp.exists()
    clock.shift(SILENT_AFTER + timedelta(minutes=1))
    await sweep_pending_blobs(services.pool, store, now=clock.now())
    assert not temp.exists()
