"""An upload cut off by a server that died (no heartbeat for STALLED_AFTER, no bytes stored) is
failed "Upload interrupted" by the worker, and can then be uploaded again; live uploads and
uploads awaiting their scan are left alone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import httpx

from correspondence.attachment import repository as repo
from correspondence.attachment.use_cases.upload import STALLED_AFTER, fail_stalled_uploads, keep_alive
from correspondence.kit import clock
from correspondence.services import Services
from tests.attachment_fixtures import ATTACHMENT, md5, new_attachment, upload, wait_for
from tests.conftest import Sender


async def claimed(db: asyncpg.Connection, attachment_id: str, *, stored: bool = False) -> None:
    """As an upload leaves it the moment its server dies: UploadProcessing, (no) bytes stored."""
    await repo.append_status(
        db, [uuid.UUID(attachment_id)], repo.UPLOAD_PROCESSING, "UploadProcessing", clock.now()
    )
    if stored:
        await db.execute("UPDATE attachments SET blob_key = 'somewhere' WHERE id = $1::uuid", attachment_id)


async def status_of(client: httpx.AsyncClient, sender: Sender, attachment_id: str) -> tuple[str, str]:
    body = (await client.get(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)).json()
    return body["status"], body["statusText"]


async def test_a_stalled_upload_is_failed_and_can_be_uploaded_again(
    client: httpx.AsyncClient, sender: Sender, services: Services, db: asyncpg.Connection
) -> None:
    stalled = await new_attachment(client, sender)
    awaiting_scan = await new_attachment(client, sender)
    await claimed(db, stalled)
    await claimed(db, awaiting_scan, stored=True)
    assert (await upload(client, sender, stalled, b"again")).status_code != 200  # 2005 while claimed

    clock.shift(STALLED_AFTER - timedelta(seconds=5))
    await fail_stalled_uploads(services.pool, now=clock.now())
    assert (await status_of(client, sender, stalled))[0] == "UploadProcessing"  # not silent long enough

    clock.shift(timedelta(seconds=10))
    assert await fail_stalled_uploads(services.pool, now=clock.now()) >= 1
    assert await status_of(client, sender, stalled) == ("Failed", "Upload interrupted")
    assert (await status_of(client, sender, awaiting_scan))[0] == "UploadProcessing"  # its scan job decides

    data = b"%PDF-1.7 second try"
    response = await upload(client, sender, stalled, data)
    assert response.status_code == 200, response.text
    body = (await client.get(f"{ATTACHMENT}/{stalled}/details", headers=sender.headers)).json()
    assert body["checksum"] == md5(data)


async def test_a_heartbeat_keeps_a_long_upload_alive(
    client: httpx.AsyncClient, sender: Sender, services: Services, db: asyncpg.Connection
) -> None:
    attachment_id = await new_attachment(client, sender)
    await claimed(db, attachment_id)
    clock.shift(STALLED_AFTER * 3)  # the upload has been streaming for a long time
    beating = asyncio.create_task(keep_alive(services.pool, uuid.UUID(attachment_id), 0.01))
    try:

        async def beat_recorded() -> bool:
            alive = await db.fetchval(
                "SELECT upload_alive FROM attachments WHERE id = $1::uuid", attachment_id
            )
            return alive is not None

        await wait_for(beat_recorded)
    finally:
        beating.cancel()
    await fail_stalled_uploads(services.pool, now=clock.now())
    assert (await status_of(client, sender, attachment_id))[0] == "UploadProcessing"
