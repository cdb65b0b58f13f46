"""A client that goes away mid-upload, over a real socket to the service served by uvicorn: the
attachment ends Failed "Upload interrupted", no object (and no temporary file) is left in the
store, and uploading again works. For the file store and for S3 (moto)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from correspondence.adapters.blobs import FileBlobStore, S3BlobStore
from correspondence.services import Services
from tests.attachment_fixtures import (
    ATTACHMENT,
    S3_KEY_ID,
    S3_SECRET,
    attachment_blobs,
    free_port,
    md5,
    new_attachment,
    s3_client,
    s3_keys,
    s3_pending_uploads,
    upload,
    wait_for,
)
from tests.conftest import Sender

MiB = 1024 * 1024


@pytest.fixture
async def live(app: Any) -> AsyncIterator[int]:
    """The test session's app, served by uvicorn on a real port in this event loop."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", access_log=False
        )
    )
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: _started(server))
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def _started(server: uvicorn.Server) -> bool:
    return server.started


async def status_of(client: httpx.AsyncClient, sender: Sender, attachment_id: str) -> tuple[str, str]:
    body = (await client.get(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)).json()
    return body["status"], body["statusText"]


async def send_part_then_vanish(
    port: int, sender: Sender, path: str, total: int, sent: bytes, wait: Any
) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {sender.token}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n"
    )
    writer.write(head.encode() + sent)
    await writer.drain()
    await wait()  # the service is reading the body
    writer.transport.abort()  # gone, mid-body


@pytest.fixture(params=["file", "s3"])
async def bucket(
    request: pytest.FixtureRequest, services: Services, moto_endpoint: str
) -> AsyncIterator[str | None]:
    """The store the service uses for the test: its own file store, or a fresh S3 bucket."""
    if request.param == "file":
        yield None
        return
    name = f"corr-{uuid.uuid4().hex[:12]}"
    s3_client(moto_endpoint).create_bucket(Bucket=name)
    before = services.blobs
    services.blobs = S3BlobStore(
        name, endpoint=moto_endpoint, access_key_id=S3_KEY_ID, secret_access_key=S3_SECRET
    )
    try:
        yield name
    finally:
        services.blobs = before


async def test_an_interrupted_upload_leaves_nothing_and_can_be_retried(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    live: int,
    bucket: str | None,
    moto_endpoint: str,
) -> None:
    data = os.urandom(24 * MiB)
    attachment_id = await new_attachment(client, sender, checksum=md5(data))

    async def processing() -> bool:
        return (await status_of(client, sender, attachment_id))[0] == "UploadProcessing"

    async def failed() -> bool:
        return (await status_of(client, sender, attachment_id))[0] == "Failed"

    await send_part_then_vanish(
        live,
        sender,
        f"{ATTACHMENT}/{attachment_id}/upload",
        len(data),
        data[: 12 * MiB],
        lambda: wait_for(processing),
    )
    await wait_for(failed)
    assert await status_of(client, sender, attachment_id) == ("Failed", "Upload interrupted")
    blobs = services.blob_store()
    if isinstance(blobs, FileBlobStore):
        assert attachment_blobs(blobs, attachment_id) == []
        assert list(blobs.incoming.glob("*")) == []
    else:
        assert bucket is not None
        assert s3_keys(moto_endpoint, bucket) == []
        assert s3_pending_uploads(moto_endpoint, bucket) == []

    retry = await upload(client, sender, attachment_id, data)
    assert retry.status_code == 200, retry.text
    assert retry.json()["status"] == "Published"
    download = await client.get(f"{ATTACHMENT}/{attachment_id}/download", headers=sender.headers)
    assert download.content == data


async def test_an_interrupted_multipart_initialize_leaves_nothing(
    client: httpx.AsyncClient, sender: Sender, services: Services, live: int
) -> None:
    boundary = "b" + uuid.uuid4().hex
    fields = {
        "Correspondence.ResourceId": sender.resource_id,
        "Correspondence.SendersReference": "interrupted",
        "Correspondence.Content.MessageTitle": "Tittel",
        "Correspondence.Content.MessageBody": "Tekst",
        "Recipients": "0192:910753614",
        "Correspondence.Content.Attachments[0].FileName": "a.pdf",
        "Correspondence.Content.Attachments[0].SendersReference": "a",
    }
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    file_part = 'Content-Disposition: form-data; name="attachments"; filename="a.pdf"'
    head += f"--{boundary}\r\n{file_part}\r\n\r\n".encode()
    before: int = await services.pool.fetchval("SELECT count(*) FROM attachments")
    _reader, writer = await asyncio.open_connection("127.0.0.1", live)
    writer.write(
        (
            f"POST /correspondence/api/v1/correspondence/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {sender.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(head) + 20 * MiB}\r\n\r\n"
        ).encode()
        + head
        + os.urandom(8 * MiB)
    )
    await writer.drain()
    store = services.blob_store()
    assert isinstance(store, FileBlobStore)

    async def writing() -> bool:
        return store.incoming.exists() and any(store.incoming.iterdir())

    await wait_for(writing)  # the file part is streaming into the store
    writer.transport.abort()

    async def cleaned() -> bool:
        return not any(store.incoming.iterdir())

    await wait_for(cleaned)
    assert await services.pool.fetchval("SELECT count(*) FROM attachments") == before
