"""Orderings that used to lose or resurrect bytes: a purge while an upload or its scan runs, an
upload that finishes after its attachment was purged, a delayed delete of a failed upload's bytes
after a re-upload, and a multipart Initialize whose process is killed between storing its files
and writing their rows. Each ordering is forced; for the file store and S3 (moto)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from correspondence.adapters.blobs import FileBlobStore, S3BlobStore
from correspondence.adapters.scanner import ClamdScanner
from correspondence.attachment.use_cases.scan import Scanning
from correspondence.attachment.use_cases.upload import STALLED_AFTER, fail_stalled_uploads
from correspondence.kit import clock
from correspondence.services import Services
from tests.attachment_fixtures import (
    ATTACHMENT,
    EICAR,
    S3_KEY_ID,
    S3_SECRET,
    attachment_blobs,
    drain,
    free_port,
    new_attachment,
    s3_client,
    s3_keys,
    upload,
    wait_for,
)
from tests.conftest import Sender

PDF = b"%PDF-1.7 an upload held open"


@pytest.fixture(params=["file", "s3"])
def bucket(request: pytest.FixtureRequest, moto_endpoint: str) -> str | None:
    """None: the service's own file store; else a fresh S3 bucket."""
    if request.param == "file":
        return None
    name = f"corr-{uuid.uuid4().hex[:12]}"
    s3_client(moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
async def store(services: Services, bucket: str | None, moto_endpoint: str) -> AsyncIterator[None]:
    """The running service (and its worker) use the chosen store for the test."""
    if bucket is None:
        yield
        return
    before = services.blobs
    services.blobs = S3BlobStore(
        bucket, endpoint=moto_endpoint, access_key_id=S3_KEY_ID, secret_access_key=S3_SECRET
    )
    try:
        yield
    finally:
        services.blobs = before


def keys_of(services: Services, bucket: str | None, moto_endpoint: str, attachment_id: str) -> list[str]:
    """Every object the store holds for this attachment, whatever its key."""
    if bucket is None:
        store = services.blob_store()
        assert isinstance(store, FileBlobStore)
        return [str(p) for p in attachment_blobs(store, attachment_id)]
    return [k for k in s3_keys(moto_endpoint, bucket) if k.startswith(f"attachments/{attachment_id}")]


async def status_of(client: httpx.AsyncClient, sender: Sender, attachment_id: str) -> tuple[str, str]:
    body = (await client.get(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)).json()
    return body["status"], body["statusText"]


class HeldUpload:
    """An upload whose body sends its first bytes, then waits until released."""

    def __init__(self, client: httpx.AsyncClient, sender: Sender, attachment_id: str, data: bytes) -> None:
        self.release = asyncio.Event()
        self._data = data
        headers = {**sender.headers, "Content-Type": "application/octet-stream"}
        self.task = asyncio.create_task(
            client.post(f"{ATTACHMENT}/{attachment_id}/upload", content=self._body(), headers=headers)
        )

    async def _body(self) -> AsyncIterator[bytes]:
        yield self._data[:5]
        await self.release.wait()
        yield self._data[5:]

    async def finish(self) -> httpx.Response:
        self.release.set()
        return await self.task


async def test_purge_is_refused_while_the_upload_or_its_scan_is_in_progress(
    client: httpx.AsyncClient, sender: Sender, services: Services, use_clamd: ClamdScanner
) -> None:
    attachment_id = await new_attachment(client, sender)
    held = HeldUpload(client, sender, attachment_id, PDF)

    async def processing() -> bool:
        return (await status_of(client, sender, attachment_id))[0] == "UploadProcessing"

    await wait_for(processing)  # the bytes are streaming
    purge = await client.delete(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)
    assert purge.status_code == 400 and purge.json()["errorCode"] == 2005, purge.text

    response = await held.finish()
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "UploadProcessing"  # stored, awaiting its malware scan
    purge = await client.delete(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)
    assert purge.status_code == 400 and purge.json()["errorCode"] == 2005, purge.text

    await drain(services)
    assert await status_of(client, sender, attachment_id) == ("Published", "Published")
    purge = await client.delete(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)
    assert purge.status_code == 204, purge.text
    await drain(services)
    assert attachment_blobs(services.blob_store(), attachment_id) == []


async def test_an_upload_that_finishes_after_a_purge_leaves_it_purged_without_bytes(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    store: None,
    bucket: str | None,
    moto_endpoint: str,
) -> None:
    attachment_id = await new_attachment(client, sender)
    held = HeldUpload(client, sender, attachment_id, PDF)

    async def processing() -> bool:
        return (await status_of(client, sender, attachment_id))[0] == "UploadProcessing"

    await wait_for(processing)
    # Its heartbeat is not seen for long (say the database was unreachable): the stalled-upload
    # poller fails it, and the sender, seeing Failed, purges it — all while its bytes still stream.
    clock.shift(STALLED_AFTER + timedelta(minutes=1))
    assert await fail_stalled_uploads(services.pool, now=clock.now()) >= 1
    assert (await status_of(client, sender, attachment_id))[0] == "Failed"
    purge = await client.delete(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)
    assert purge.status_code == 204, purge.text

    response = await held.finish()
    assert response.status_code == 400 and response.json()["errorCode"] == 2006, response.text
    await drain(services)
    assert await status_of(client, sender, attachment_id) == ("Purged", "Attachment has been purged")
    assert keys_of(services, bucket, moto_endpoint, attachment_id) == []
    download = await client.get(f"{ATTACHMENT}/{attachment_id}/download", headers=sender.headers)
    assert download.status_code == 400 and download.json()["errorCode"] == 2019


async def test_an_upload_whose_bytes_were_swept_as_orphans_fails_and_keeps_nothing(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    store: None,
    bucket: str | None,
    moto_endpoint: str,
) -> None:
    # Imported here, so the other tests of this module still run on code without a sweeper.
    from correspondence.attachment.use_cases.pending_blobs import SILENT_AFTER, sweep_pending_blobs

    attachment_id = await new_attachment(client, sender)
    held = HeldUpload(client, sender, attachment_id, PDF)

    async def processing() -> bool:
        return (await status_of(client, sender, attachment_id))[0] == "UploadProcessing"

    await wait_for(processing)
    # Silent for so long that the sweeper takes its pending blob for a dead writer's.
    clock.shift(SILENT_AFTER + timedelta(minutes=1))
    await sweep_pending_blobs(services.pool, services.blob_store(), now=clock.now())

    response = await held.finish()
    assert response.status_code == 502 and response.json()["errorCode"] == 2002, response.text
    await drain(services)
    assert await status_of(client, sender, attachment_id) == ("Failed", "Upload failed")
    assert keys_of(services, bucket, moto_endpoint, attachment_id) == []
    retry = await upload(client, sender, attachment_id, PDF)
    assert retry.status_code == 200 and retry.json()["status"] == "Published", retry.text


async def test_a_delayed_delete_of_a_failed_upload_spares_the_re_upload(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    use_clamd: ClamdScanner,
    store: None,
    bucket: str | None,
    moto_endpoint: str,
) -> None:
    attachment_id = await new_attachment(client, sender, fileName="innhold.txt")
    assert (await upload(client, sender, attachment_id, EICAR)).status_code == 200
    # The scan fails the upload and enqueues the deletion of its bytes; that job has not run yet.
    await Scanning(services.pool, blobs=services.blob_store, scanner=lambda: use_clamd).run_once()
    assert (await status_of(client, sender, attachment_id))[0] == "Failed"
    [old_key] = await services.pool.fetchval(
        """SELECT array_agg(payload->>'key') FROM jobs
           WHERE task = 'attachment.delete_blob' AND ref_id = $1::uuid""",
        attachment_id,
    )

    # Uploaded again, with the scanner switched off meanwhile (the same bytes: the attachment keeps
    # the checksum its first upload computed), and published before the old delete job runs.
    services.scanner = None
    again = await upload(client, sender, attachment_id, EICAR)
    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["statusText"]) == ("Published", "Bypassed malware scan")
    await drain(services)  # now the old delete job runs

    download = await client.get(f"{ATTACHMENT}/{attachment_id}/download", headers=sender.headers)
    assert download.status_code == 200 and download.content == EICAR
    [kept] = keys_of(services, bucket, moto_endpoint, attachment_id)  # only the re-upload's bytes
    assert not kept.endswith(old_key)


# --- a multipart Initialize killed between its files and its rows -------------------------------------


@pytest.fixture
def served(
    database_url: str, data_dir: Path, bucket: str | None, moto_endpoint: str
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`correspondence serve` as a real process on the test database, storing in the chosen store."""
    port = free_port()
    env = {
        **os.environ,
        "CORRESPONDENCE_DATABASE_URL": database_url,
        "CORRESPONDENCE_DATA_DIR": str(data_dir),
        "CORRESPONDENCE_ACCESS_LOG": "false",
    }
    if bucket is not None:
        env |= {
            "CORRESPONDENCE_STORAGE": "s3",
            "CORRESPONDENCE_S3_BUCKET": bucket,
            "CORRESPONDENCE_S3_ENDPOINT": moto_endpoint,
            "CORRESPONDENCE_S3_ACCESS_KEY_ID": S3_KEY_ID,
            "CORRESPONDENCE_S3_SECRET_ACCESS_KEY": S3_SECRET,
        }
    command = ["serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [sys.executable, "-m", "correspondence", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=15)
        if process.stderr is not None:
            process.stderr.close()


def _multipart_head(sender: Sender, boundary: str) -> bytes:
    fields = {
        "Correspondence.ResourceId": sender.resource_id,
        "Correspondence.SendersReference": "killed",
        "Correspondence.Content.MessageTitle": "Tittel",
        "Correspondence.Content.MessageBody": "Tekst",
        "Recipients": "0192:910753614",
        "Correspondence.Content.Attachments[0].FileName": "a.pdf",
        "Correspondence.Content.Attachments[0].SendersReference": "a",
    }
    return b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )


async def test_a_multipart_initialize_killed_before_its_rows_leaves_blobs_the_sweeper_deletes(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    store: None,
    bucket: str | None,
    moto_endpoint: str,
    served: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = served

    def objects() -> set[str]:
        if bucket is None:
            root = services.blob_store()
            assert isinstance(root, FileBlobStore)
            folder = root.root / "attachments"
            return {p.name for p in folder.iterdir()} if folder.exists() else set()
        return set(s3_keys(moto_endpoint, bucket))

    async def listening() -> bool:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode() if process.stderr else "serve exited")
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        return True

    await wait_for(listening, timeout=60)
    before = objects()
    attachments_before: int = await services.pool.fetchval("SELECT count(*) FROM attachments")

    boundary = "b" + uuid.uuid4().hex
    data = os.urandom(256 * 1024)
    file_part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; filename="a.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    # The whole file part and the start of the next part: the file is complete and stored, and the
    # service waits for the rest of the form before it writes any row.
    sent = _multipart_head(sender, boundary) + file_part + data + f"\r\n--{boundary}\r\n".encode()
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            "POST /correspondence/api/v1/correspondence/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {sender.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(sent) + 4096}\r\n\r\n"
        ).encode()
        + sent
    )
    await writer.drain()

    async def file_stored() -> bool:
        return bool(objects() - before)

    await wait_for(file_stored)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=15)
    writer.close()
    [orphan] = objects() - before
    assert orphan.startswith("attachments/") or bucket is None
    assert await services.pool.fetchval("SELECT count(*) FROM attachments") == attachments_before

    await drain(services)  # too early: its writer might still be alive
    assert objects() - before == {orphan}
    clock.shift(timedelta(hours=1))
    await drain(services)
    assert objects() - before == set()
    db: asyncpg.Pool = services.pool
    assert await db.fetchval("SELECT count(*) FROM pending_blobs WHERE key LIKE '%' || $1", orphan) == 0
