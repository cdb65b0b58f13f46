"""Malware scans that cannot strand uploads: a clamd outage of any length is waited out without
spending job attempts; a scan longer than any lease is made once, its claim kept by a heartbeat;
a scan whose worker died or was stopped is taken again; and a file whose scan cannot be made for
CORRESPONDENCE_SCAN_GIVE_UP_HOURS fails "Malware scan failed: scanner unavailable", so it can be
uploaded again. The clamd stand-ins are real servers: nothing listening, or a TCP server that
holds its answer."""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from correspondence.adapters.scanner import ClamdScanner
from correspondence.app import build_worker
from correspondence.attachment import repository as repo
from correspondence.attachment.use_cases.scan import LEASE, MAX_RETRY_SECONDS, Scanning, retry_delay
from correspondence.kit import clock
from correspondence.kit.jobs import Worker
from correspondence.services import Services
from tests.attachment_fixtures import (
    ATTACHMENT,
    attachment_blobs,
    drain,
    free_port,
    new_attachment,
    upload,
    wait_for,
)
from tests.conftest import Sender


async def status_of(client: httpx.AsyncClient, sender: Sender, attachment_id: str) -> tuple[str, str]:
    body = (await client.get(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)).json()
    return body["status"], body["statusText"]


async def statuses_of(client: httpx.AsyncClient, sender: Sender, attachment_id: str) -> list[str]:
    body = (await client.get(f"{ATTACHMENT}/{attachment_id}/details", headers=sender.headers)).json()
    return [h["status"] for h in body["statusHistory"]]


async def scan_state(db: asyncpg.Connection, attachment_id: str) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT scan_token, scan_due, scan_tries FROM attachments WHERE id = $1::uuid", attachment_id
    )
    assert row is not None
    return row


async def rounds(worker: Worker) -> None:
    """Every round the worker has work for, now."""
    while await worker.run_once():
        pass


async def scans_metric(client: httpx.AsyncClient, state: str) -> float:
    text = (await client.get("/metrics")).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "correspondence_attachment_scans" and s.labels == {"state": state}
    )


def unique_file() -> bytes:
    return b"%PDF-1.7 " + uuid.uuid4().hex.encode() * 50


class HoldingClamd:
    """clamd's INSTREAM protocol on TCP: answers `stream: OK`, but holds its answer to the first
    stream carrying `held` until released, and counts those streams (a second one is answered at
    once, so a test that expects one fails instead of waiting)."""

    def __init__(self, held: bytes) -> None:
        self.held = held
        self.scans_of_held = 0
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\0")  # zINSTREAM
            data = bytearray()
            while size := struct.unpack(">I", await reader.readexactly(4))[0]:
                data += await reader.readexactly(size)
            if bytes(data) == self.held:
                self.scans_of_held += 1
                if not self.holding.is_set():
                    self.holding.set()
                    await self.release.wait()
            writer.write(b"stream: OK\0")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the scanning side went away
        finally:
            writer.close()


@pytest.fixture
async def holding_clamd() -> AsyncIterator[HoldingClamd]:
    fake = HoldingClamd(unique_file())
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        fake.release.set()
        server.close()
        await server.wait_closed()


async def test_backoff_doubles_from_five_seconds_to_at_most_five_minutes() -> None:
    assert [retry_delay(n).total_seconds() for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert retry_delay(10_000) == timedelta(seconds=MAX_RETRY_SECONDS)


async def test_a_scanner_down_for_more_rounds_than_job_attempts_is_waited_for(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    db: asyncpg.Connection,
    clamd_address: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="correspondence.attachment.scan")
    # clamd "down": nothing at its socket path yet; "started" below: its socket appears there.
    socket_dir = Path(tempfile.mkdtemp(prefix="corr-clamd-later-"))
    later = socket_dir / "clamd.sock"
    monkeypatch.setattr(services, "scanner", ClamdScanner(str(later), timeout=5))
    attachment_id = await new_attachment(client, sender)
    assert (await upload(client, sender, attachment_id, unique_file())).status_code == 200
    worker = build_worker(services)  # one worker process through the whole outage

    outage_rounds = services.settings.job_max_attempts + 3
    for _ in range(outage_rounds):
        await rounds(worker)
        clock.shift(timedelta(seconds=MAX_RETRY_SECONDS + 1))  # past any backoff
    assert (await status_of(client, sender, attachment_id))[0] == "UploadProcessing"
    assert (await scan_state(db, attachment_id))["scan_tries"] == outage_rounds
    waiting = [r for r in caplog.records if "cannot be made" in r.getMessage()]
    assert len(waiting) == 1, [r.getMessage() for r in caplog.records]  # once per outage
    assert await scans_metric(client, "retrying") >= 1

    try:
        os.symlink(clamd_address, later)
        await rounds(worker)
    finally:
        later.unlink(missing_ok=True)
        socket_dir.rmdir()
    assert await status_of(client, sender, attachment_id) == ("Published", "Published")
    assert any("pass again" in r.getMessage() for r in caplog.records)
    failed_jobs = await db.fetchval("SELECT count(*) FROM jobs WHERE task LIKE 'attachment.%' AND status = 3")
    assert failed_jobs == 0


async def test_a_scan_slower_than_its_lease_is_made_once_and_applied_once(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    db: asyncpg.Connection,
    holding_clamd: HoldingClamd,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scanner = ClamdScanner(f"127.0.0.1:{holding_clamd.port}", timeout=3600)
    monkeypatch.setattr(services, "scanner", scanner)
    attachment_id = await new_attachment(client, sender)
    assert (await upload(client, sender, attachment_id, holding_clamd.held)).status_code == 200

    first = Scanning(
        services.pool, blobs=services.blob_store, scanner=lambda: scanner, heartbeat_seconds=0.05
    )
    scanning = asyncio.create_task(first.run_once())
    try:
        await asyncio.wait_for(holding_clamd.holding.wait(), 30)
        token = (await scan_state(db, attachment_id))["scan_token"]
        # The scan outlasts the job lease and its own lease many times over ...
        clock.shift(timedelta(seconds=services.settings.job_lease_seconds) + LEASE * 10)

        async def beaten() -> bool:  # ... but its heartbeat keeps its claim
            return bool((await scan_state(db, attachment_id))["scan_due"] > clock.now())

        await wait_for(beaten)
        await rounds(build_worker(services))  # another worker comes by, and backs off
        assert holding_clamd.scans_of_held == 1
        assert (await scan_state(db, attachment_id))["scan_token"] == token
        assert (await status_of(client, sender, attachment_id))[0] == "UploadProcessing"
    finally:
        holding_clamd.release.set()
        await scanning
    assert await status_of(client, sender, attachment_id) == ("Published", "Published")
    await rounds(build_worker(services))
    assert holding_clamd.scans_of_held == 1
    assert (await statuses_of(client, sender, attachment_id)).count("Published") == 1


async def test_a_scan_stopped_mid_stream_is_handed_back_and_made_again(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    db: asyncpg.Connection,
    holding_clamd: HoldingClamd,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scanner = ClamdScanner(f"127.0.0.1:{holding_clamd.port}", timeout=3600)
    monkeypatch.setattr(services, "scanner", scanner)
    attachment_id = await new_attachment(client, sender)
    assert (await upload(client, sender, attachment_id, holding_clamd.held)).status_code == 200

    scanning = asyncio.create_task(build_worker(services).run_once())
    await asyncio.wait_for(holding_clamd.holding.wait(), 30)
    scanning.cancel()  # the worker is stopped while clamd has not answered
    with pytest.raises(asyncio.CancelledError):
        await scanning
    state = await scan_state(db, attachment_id)
    assert state["scan_token"] is None and state["scan_tries"] == 0  # handed back, not a failure

    holding_clamd.release.set()  # clamd answers at once from now on
    await drain(services)
    assert holding_clamd.scans_of_held == 2
    assert await status_of(client, sender, attachment_id) == ("Published", "Published")


async def test_a_scan_whose_worker_died_is_taken_again_after_its_lease(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    db: asyncpg.Connection,
    holding_clamd: HoldingClamd,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    holding_clamd.release.set()
    scanner = ClamdScanner(f"127.0.0.1:{holding_clamd.port}", timeout=30)
    monkeypatch.setattr(services, "scanner", scanner)
    attachment_id = await new_attachment(client, sender)
    assert (await upload(client, sender, attachment_id, holding_clamd.held)).status_code == 200
    # A worker claims the file and dies (killed: no heartbeat, no hand-back).
    now = clock.now()
    claimed = await repo.claim_scans(services.pool, now, now + LEASE, 1000)
    assert uuid.UUID(attachment_id) in [c["id"] for c in claimed]

    clock.shift(LEASE - timedelta(seconds=5))
    await drain(services)
    assert holding_clamd.scans_of_held == 0  # its lease still runs
    assert (await status_of(client, sender, attachment_id))[0] == "UploadProcessing"

    clock.shift(timedelta(seconds=10))
    await drain(services)
    assert holding_clamd.scans_of_held == 1
    assert await status_of(client, sender, attachment_id) == ("Published", "Published")


async def test_a_file_whose_scan_cannot_be_made_for_the_give_up_bound_fails_and_can_be_uploaded_again(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    db: asyncpg.Connection,
    clamd_address: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "scanner", ClamdScanner(f"127.0.0.1:{free_port()}", timeout=5))
    attachment_id, data = await new_attachment(client, sender), unique_file()
    assert (await upload(client, sender, attachment_id, data)).status_code == 200
    worker = build_worker(services)
    await rounds(worker)
    give_up = timedelta(hours=services.settings.scan_give_up_hours)

    clock.shift(give_up - timedelta(minutes=10))
    await rounds(worker)
    assert (await status_of(client, sender, attachment_id))[0] == "UploadProcessing"  # not yet

    clock.shift(timedelta(minutes=11))
    await rounds(worker)
    assert await status_of(client, sender, attachment_id) == (
        "Failed",
        "Malware scan failed: scanner unavailable",
    )
    await rounds(worker)  # the job deleting its bytes
    assert attachment_blobs(services.blob_store(), attachment_id) == []

    monkeypatch.setattr(services, "scanner", ClamdScanner(clamd_address, timeout=30))
    again = await upload(client, sender, attachment_id, data)  # the checksum recorded is kept
    assert again.status_code == 200, again.text
    await drain(services)
    assert await status_of(client, sender, attachment_id) == ("Published", "Published")
