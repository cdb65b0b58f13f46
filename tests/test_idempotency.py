"""DESIGN decision 2: the same key and payload replay the original answer; another payload → 409."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx

from tests import builders
from tests.conftest import INITIALIZE, Sender


async def test_same_key_and_payload_replays_the_original_response(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    body = builders.initialize_body(
        sender.resource_id,
        [builders.national_id()],
        notification_block=builders.notification(),
        idempotent_key=str(uuid.uuid4()),
    )
    first = await client.post(INITIALIZE, json=body, headers=sender.headers)
    again = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert first.status_code == again.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    cid = first.json()["correspondences"][0]["correspondenceId"]
    assert (
        await db.fetchval(
            "SELECT count(*) FROM correspondences WHERE idempotent_key = $1::uuid", body["idempotentKey"]
        )
        == 1
    )
    assert cid


async def test_same_key_with_another_payload_is_409(client: httpx.AsyncClient, sender: Sender) -> None:
    key = str(uuid.uuid4())
    first = builders.initialize_body(sender.resource_id, [builders.national_id()], idempotent_key=key)
    other = builders.initialize_body(sender.resource_id, [builders.national_id()], idempotent_key=key)
    assert (await client.post(INITIALIZE, json=first, headers=sender.headers)).status_code == 200
    response = await client.post(INITIALIZE, json=other, headers=sender.headers)
    assert response.status_code == 409
    assert response.json()["errorCode"] == 1034


async def test_concurrent_identical_requests_create_one_correspondence(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    key = str(uuid.uuid4())
    body = builders.initialize_body(sender.resource_id, [builders.national_id()], idempotent_key=key)
    responses = await asyncio.gather(
        *(client.post(INITIALIZE, json=body, headers=sender.headers) for _ in range(8))
    )
    assert [r.status_code for r in responses] == [200] * 8
    ids = {r.json()["correspondences"][0]["correspondenceId"] for r in responses}
    assert len(ids) == 1
    assert sum(1 for r in responses if "idempotent-replayed" not in r.headers) == 1
    assert await db.fetchval("SELECT count(*) FROM correspondences WHERE idempotent_key = $1::uuid", key) == 1


async def test_concurrent_requests_with_one_key_and_different_payloads_create_one(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    key = str(uuid.uuid4())
    bodies = [
        builders.initialize_body(sender.resource_id, [builders.national_id()], idempotent_key=key)
        for _ in range(6)
    ]
    responses = await asyncio.gather(
        *(client.post(INITIALIZE, json=b, headers=sender.headers) for b in bodies)
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 5
    assert await db.fetchval("SELECT count(*) FROM correspondences WHERE idempotent_key = $1::uuid", key) == 1
