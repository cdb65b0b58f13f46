"""The operator's recall and pause verbs act on the configured database, as the API routes do."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner, Result

from correspondence.cli import app
from correspondence.config import get_settings
from correspondence.registry import repository as registry
from tests import builders
from tests.conftest import INITIALIZE, Sender

runner = CliRunner()


async def cli(args: list[str]) -> Result:
    """In a thread: the verbs start their own event loop."""
    return await asyncio.to_thread(runner.invoke, app, args)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, data_dir: Path) -> Iterator[None]:
    monkeypatch.setenv("CORRESPONDENCE_DATABASE_URL", database_url)
    monkeypatch.setenv("CORRESPONDENCE_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def scheduled(client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, reference: str) -> str:
    org = builders.org_number()
    await registry.set_contact(
        db,
        party=f"urn:altinn:organization:identifier-no:{org}",
        email="a@example.no",
        mobile=None,
        reserved=None,
    )
    body = builders.initialize_body(
        sender.resource_id,
        [f"0192:{org}"],
        notification_block={"notificationTemplate": "GenericAltinnMessage", "sendReminder": True},
        requestedPublishTime=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
        sendersReference=reference,
    )
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    cid: str = response.json()["correspondences"][0]["correspondenceId"]
    return cid


async def status_of(db: asyncpg.Connection, cid: str) -> int:
    status: int = await db.fetchval("SELECT status FROM correspondences WHERE id = $1", uuid.UUID(cid))
    return status


async def test_recall_verb_recalls_one_correspondence(
    env: None, client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    cid = await scheduled(client, sender, db, "one")
    result = await cli(["recall", cid])
    assert result.exit_code == 0, result.output
    assert "1 purged" in result.output and "1 notifications and 1 reminders cancelled" in result.output
    assert await status_of(db, cid) == 8
    again = await cli(["recall", cid])
    assert again.exit_code == 0 and "1 purged before" in again.output


async def test_recall_verb_recalls_a_resource_by_senders_reference(
    env: None, client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    bad, good = await scheduled(client, sender, db, "bad"), await scheduled(client, sender, db, "good")
    result = await cli(["recall", "--resource", sender.resource_id, "--senders-reference", "bad"])
    assert result.exit_code == 0, result.output
    assert "recalled 1 correspondences: 1 purged" in result.output
    assert (await status_of(db, bad), await status_of(db, good)) == (8, 1)


async def test_pause_and_resume_verbs(env: None, sender: Sender, db: asyncpg.Connection) -> None:
    paused = await cli(["resource", "pause", sender.resource_id])
    assert paused.exit_code == 0 and "paused" in paused.output
    assert (
        await db.fetchval("SELECT count(*) FROM resource_pauses WHERE resource_id = $1", sender.resource_id)
        == 1
    )
    assert "was paused already" in (await cli(["resource", "pause", sender.resource_id])).output
    resumed = await cli(["resource", "resume", sender.resource_id])
    assert resumed.exit_code == 0 and "resumed" in resumed.output
    assert "was not paused" in (await cli(["resource", "resume", sender.resource_id])).output
    actions = await db.fetch(
        "SELECT action, party FROM resource_pause_log WHERE resource_id = $1 ORDER BY at", sender.resource_id
    )
    assert [(a["action"], a["party"]) for a in actions] == [("paused", None), ("resumed", None)]


async def test_verbs_refuse_what_does_not_exist(env: None) -> None:
    assert (await cli(["recall", str(uuid.uuid4())])).exit_code == 1
    assert (await cli(["recall", "not-an-id"])).exit_code == 2
    assert (await cli(["recall"])).exit_code == 2
    assert (await cli(["recall", "--resource", "no-such-resource-x"])).exit_code == 1
    assert (await cli(["resource", "pause", "no-such-resource-x"])).exit_code == 1
    assert (await cli(["recall", "--resource", "x", "--from", "yesterday"])).exit_code == 2
