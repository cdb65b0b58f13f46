"""Publishing: at once or at requestedPublishTime, by a job that survives a worker's death."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from correspondence.app import build_worker
from correspondence.kit import clock
from correspondence.kit.jobs import Worker
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders
from tests.conftest import INITIALIZE, Sender


async def create(client: httpx.AsyncClient, sender: Sender, recipients: list[str], **kw: Any) -> list[str]:
    body = builders.initialize_body(sender.resource_id, recipients, **kw)
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    return [i["correspondenceId"] for i in response.json()["correspondences"]]


async def status_of(client: httpx.AsyncClient, sender: Sender, cid: str) -> str:
    response = await client.get(f"{INITIALIZE}/{cid}", headers=sender.headers)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def drain(services: Services) -> None:
    worker = build_worker(services)
    while await worker.run_once():
        pass


async def test_published_at_once_when_no_time_is_requested(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    [cid] = await create(client, sender, [builders.national_id()])
    assert await status_of(client, sender, cid) == "ReadyForPublish"
    await drain(services)
    overview = (await client.get(f"{INITIALIZE}/{cid}", headers=sender.headers)).json()
    assert overview["status"] == "Published"
    assert overview["published"] is not None
    details = (await client.get(f"{INITIALIZE}/{cid}/details", headers=sender.headers)).json()
    assert [s["status"] for s in details["statusHistory"]] == ["Initialized", "ReadyForPublish", "Published"]


async def test_scheduled_publish_waits_for_its_time(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    publish_at = datetime.now(UTC) + timedelta(hours=2)
    [cid] = await create(
        client, sender, [builders.national_id()], requestedPublishTime=publish_at.isoformat()
    )
    await drain(services)
    assert await status_of(client, sender, cid) == "ReadyForPublish"
    clock.shift(timedelta(hours=2, seconds=1))
    await drain(services)
    assert await status_of(client, sender, cid) == "Published"


async def test_a_past_publish_time_publishes_at_once(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    past = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    [cid] = await create(client, sender, [builders.national_id()], requestedPublishTime=past)
    await drain(services)
    assert await status_of(client, sender, cid) == "Published"


async def test_reserved_recipient_fails_at_publish(
    client: httpx.AsyncClient, sender: Sender, services: Services, db: asyncpg.Connection
) -> None:
    reserved, free = builders.national_id(), builders.national_id()
    await registry.set_contact(
        db, party=f"urn:altinn:person:identifier-no:{reserved}", email=None, mobile=None, reserved=True
    )
    ids = await create(client, sender, [reserved, free])
    await drain(services)
    overview = (await client.get(f"{INITIALIZE}/{ids[0]}", headers=sender.headers)).json()
    assert overview["status"] == "Failed"
    assert "reserved" in overview["statusText"]
    assert await status_of(client, sender, ids[1]) == "Published"


async def test_publishing_twice_writes_nothing_more(
    client: httpx.AsyncClient, sender: Sender, services: Services, db: asyncpg.Connection
) -> None:
    [cid] = await create(client, sender, [builders.national_id()])
    await drain(services)
    await db.execute(
        "INSERT INTO jobs (task, ref_id, run_at) VALUES ('correspondence.publish', $1::uuid, now())", cid
    )
    await drain(services)
    rows = await db.fetch(
        "SELECT status FROM correspondence_statuses WHERE correspondence_id = $1::uuid", cid
    )
    assert [r["status"] for r in rows] == [2]  # Published once (the two before it are not stored)
    details = (await client.get(f"{INITIALIZE}/{cid}/details", headers=sender.headers)).json()
    assert [h["status"] for h in details["statusHistory"]] == ["Initialized", "ReadyForPublish", "Published"]


async def test_sender_sees_placeholder_content_after_publication(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    [cid] = await create(client, sender, [builders.national_id()])
    before = (await client.get(f"{INITIALIZE}/{cid}", headers=sender.headers)).json()
    assert before["content"]["messageTitle"] == "Meldingstittel"
    await drain(services)
    after = (await client.get(f"{INITIALIZE}/{cid}", headers=sender.headers)).json()
    assert after["content"] == {
        "language": "no",
        "messageTitle": "",
        "messageSummary": "",
        "messageBody": "",
        "attachments": [],
    }


async def test_a_job_held_by_a_dead_worker_is_taken_again_after_its_lease(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    [cid] = await create(client, sender, [builders.national_id()])
    dead = Worker(services.pool, lease_seconds=30)
    claimed = await dead.claim()  # took the job, then died before finishing it
    assert uuid.UUID(cid) in {ref for j in claimed for ref in j.refs()}
    await drain(services)
    assert await status_of(client, sender, cid) == "ReadyForPublish"  # still leased
    clock.shift(timedelta(seconds=31))
    await drain(services)
    assert await status_of(client, sender, cid) == "Published"


async def test_publishing_is_not_held_up_by_a_slow_job_of_another_task(
    client: httpx.AsyncClient, sender: Sender, services: Services, db: asyncpg.Connection
) -> None:
    """Publish jobs have a lane of their own in the worker: a round of other work that does not
    end (here a job that never finishes, due before the publish job) does not keep what was
    accepted from being published. One loop in `run_at` order waited behind it."""
    task = f"test.stuck.{uuid.uuid4().hex[:8]}"
    worker = build_worker(services)
    started = asyncio.Event()

    async def stuck(conn: asyncpg.Connection, jobs: list[Any]) -> None:
        started.set()
        await asyncio.Event().wait()

    worker.register(task, stuck)
    due = clock.now() - timedelta(seconds=5)
    await db.execute("INSERT INTO jobs (task, run_at, created) VALUES ($1, $2, $2)", task, due)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(started.wait(), 60)
        [cid] = await create(client, sender, [builders.national_id()])
        worker.wake()
        for _ in range(600):
            if await status_of(client, sender, cid) == "Published":
                break
            await asyncio.sleep(0.1)
        assert await status_of(client, sender, cid) == "Published"
        assert not started.is_set() or await db.fetchval("SELECT status FROM jobs WHERE task = $1", task) == 1
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await db.execute("DELETE FROM jobs WHERE task = $1", task)


async def test_a_failing_job_is_retried_later(
    client: httpx.AsyncClient, sender: Sender, services: Services, db: asyncpg.Connection
) -> None:
    worker = Worker(services.pool)
    calls: list[int] = []

    async def flaky(conn: asyncpg.Connection, jobs: list[Any]) -> None:
        calls.append(len(jobs))
        raise RuntimeError("transient")

    worker.register("test.flaky", flaky)
    await db.execute("INSERT INTO jobs (task, run_at) VALUES ('test.flaky', $1)", clock.now())
    await worker.run_once()
    row = await db.fetchrow("SELECT status, attempts, last_error, run_at FROM jobs WHERE task = 'test.flaky'")
    assert row["status"] == 0 and row["attempts"] == 1 and "transient" in row["last_error"]
    assert row["run_at"] > clock.now()
    await db.execute("DELETE FROM jobs WHERE task = 'test.flaky'")


async def test_publish_survives_a_killed_worker_process(
    client: httpx.AsyncClient, sender: Sender, services: Services, database_url: str, data_dir: Path
) -> None:
    """A real `correspondence worker` process picks up a job that another worker had leased."""
    [cid] = await create(client, sender, [builders.national_id()])
    abandoned = Worker(services.pool, lease_seconds=1)
    assert uuid.UUID(cid) in {ref for j in await abandoned.claim() for ref in j.refs()}
    env = {
        **os.environ,
        "CORRESPONDENCE_DATABASE_URL": database_url,
        "CORRESPONDENCE_DATA_DIR": str(data_dir),
        "CORRESPONDENCE_WORKER_POLL_SECONDS": "0.2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "correspondence", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        status = ""
        for _ in range(150):
            status = await status_of(client, sender, cid)
            if status == "Published":
                break
            await asyncio.sleep(0.1)
        assert status == "Published"
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert process.returncode == 0, process.stderr.read().decode() if process.stderr else ""


async def test_five_hundred_recipients_in_one_request(
    client: httpx.AsyncClient, sender: Sender, services: Services, db: asyncpg.Connection
) -> None:
    recipients = [builders.national_id() for _ in range(500)]
    assert len(set(recipients)) == 500
    body = builders.initialize_body(
        sender.resource_id, recipients, notification_block=builders.notification()
    )
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    items = response.json()["correspondences"]
    assert len(items) == 500
    ids = [i["correspondenceId"] for i in items]
    assert await db.fetchval("SELECT count(*) FROM correspondences WHERE id = ANY($1::uuid[])", ids) == 500
    assert (
        await db.fetchval(
            "SELECT count(*) FROM notification_orders WHERE correspondence_id = ANY($1::uuid[])", ids
        )
        == 1000
    )
    assert (
        await db.fetchval(
            "SELECT count(DISTINCT content_id) FROM correspondences WHERE id = ANY($1::uuid[])", ids
        )
        == 1
    )
    await drain(services)
    published = await db.fetchval(
        "SELECT count(*) FROM correspondences WHERE id = ANY($1::uuid[]) AND published IS NOT NULL", ids
    )
    assert published == 500


async def test_recipient_name_placeholder_is_filled_per_recipient(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    named, unnamed = builders.national_id(), builders.national_id()
    await registry.set_party_name(db, party=f"urn:altinn:person:identifier-no:{named}", name="Kari Nordmann")
    ids = await create(
        client,
        sender,
        [named, unnamed],
        content={"messageTitle": "Til {{recipientName}}", "messageBody": "Hei {{recipientName}}."},
    )
    first = (await client.get(f"{INITIALIZE}/{ids[0]}", headers=sender.headers)).json()["content"]
    second = (await client.get(f"{INITIALIZE}/{ids[1]}", headers=sender.headers)).json()["content"]
    assert first["messageTitle"] == "Til Kari Nordmann" and first["messageBody"] == "Hei Kari Nordmann."
    assert second["messageTitle"] == f"Til {unnamed}"
