"""DESIGN decision 2: the same key and payload replay the original answer; another payload → 409."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx

from correspondence.auth.tokens import DevIssuer
from correspondence.registry import repository as registry
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


async def _another_owner(db: asyncpg.Connection, dev_issuer: DevIssuer) -> Sender:
    org = builders.org_number()
    resource_id = f"test-resource-{uuid.uuid4().hex[:10]}"
    await registry.upsert_resource(
        db,
        resource_id=resource_id,
        owner_org=org,
        title="Another owner's resource",
        resource_type="CorrespondenceService",
        confidential="NotConfidential",
        min_auth_level=0,
    )
    token = dev_issuer.mint(scope="altinn:correspondence.write altinn:serviceowner", org=org)
    return Sender(org, resource_id, token)


async def test_another_owner_using_the_same_key_creates_its_own_correspondence(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, dev_issuer: DevIssuer
) -> None:
    key = str(uuid.uuid4())
    other = await _another_owner(db, dev_issuer)
    mine = builders.initialize_body(sender.resource_id, [builders.national_id()], idempotent_key=key)
    theirs = builders.initialize_body(other.resource_id, [builders.national_id()], idempotent_key=key)

    first = await client.post(INITIALIZE, json=mine, headers=sender.headers)
    assert first.status_code == 200, first.text
    second = await client.post(INITIALIZE, json=theirs, headers=other.headers)
    assert second.status_code == 200, second.text
    assert "idempotent-replayed" not in second.headers
    mine_id = first.json()["correspondences"][0]["correspondenceId"]
    theirs_id = second.json()["correspondences"][0]["correspondenceId"]
    assert theirs_id != mine_id
    owners = await db.fetch(
        "SELECT service_owner_id FROM correspondences WHERE idempotent_key = $1::uuid ORDER BY id", key
    )
    assert sorted(r["service_owner_id"] for r in owners) == sorted([sender.org, other.org])

    # Each owner's retry still replays its own answer.
    again = await client.post(INITIALIZE, json=theirs, headers=other.headers)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == second.json()
    again = await client.post(INITIALIZE, json=mine, headers=sender.headers)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()


async def test_a_caller_who_may_not_send_for_the_owner_gets_403_not_the_replayed_answer(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, dev_issuer: DevIssuer
) -> None:
    body = builders.initialize_body(
        sender.resource_id, [builders.national_id()], idempotent_key=str(uuid.uuid4())
    )
    first = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert first.status_code == 200, first.text

    outsider = dev_issuer.mint(scope="altinn:correspondence.write", org=builders.org_number())
    replayed = await client.post(INITIALIZE, json=body, headers={"Authorization": f"Bearer {outsider}"})
    assert replayed.status_code == 403, replayed.text
    assert "idempotent-replayed" not in replayed.headers
    assert first.json()["correspondences"][0]["correspondenceId"] not in replayed.text
    count = await db.fetchval(
        "SELECT count(*) FROM correspondences WHERE idempotent_key = $1::uuid", body["idempotentKey"]
    )
    assert count == 1


# --- any number of recipients (DESIGN decision 2: no 1047) ------------------------------------------


async def test_a_three_recipient_request_replays_the_same_ids(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    key = str(uuid.uuid4())
    people = [builders.national_id() for _ in range(3)]
    reserved = "urn:altinn:person:identifier-no:" + people[1]
    await registry.set_contact(db, party=reserved, email="x@example.no", mobile=None, reserved=True)
    body = builders.initialize_body(
        sender.resource_id, people, notification_block=builders.notification(), idempotent_key=key
    )
    first = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert first.status_code == 200, first.text
    statuses = [c["status"] for c in first.json()["correspondences"]]
    assert statuses == ["ReadyForPublish", "Reserved", "ReadyForPublish"]
    assert "idempotent-replayed" not in first.headers
    again = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len({c["correspondenceId"] for c in first.json()["correspondences"]}) == 3
    assert await db.fetchval("SELECT count(*) FROM correspondences WHERE idempotent_key = $1::uuid", key) == 3


async def test_concurrent_duplicates_of_a_500_recipient_request_create_exactly_one_set(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    key = str(uuid.uuid4())
    people = [builders.national_id() for _ in range(500)]
    assert len(set(people)) == 500
    body = builders.initialize_body(sender.resource_id, people, idempotent_key=key)
    responses = await asyncio.gather(
        *(client.post(INITIALIZE, json=body, headers=sender.headers) for _ in range(8))
    )
    assert [r.status_code for r in responses] == [200] * 8, [r.text[:300] for r in responses]
    answers = [[c["correspondenceId"] for c in r.json()["correspondences"]] for r in responses]
    assert all(a == answers[0] for a in answers)
    assert len(set(answers[0])) == 500
    assert sum(1 for r in responses if "idempotent-replayed" not in r.headers) == 1
    by_key = "SELECT count(*) FROM correspondences WHERE idempotent_key = $1::uuid"
    assert await db.fetchval(by_key, key) == 500
    assert (
        await db.fetchval("SELECT count(*) FROM correspondences WHERE resource_id = $1", sender.resource_id)
        == 500
    )


async def test_a_multi_recipient_key_with_another_payload_is_409(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    key = str(uuid.uuid4())
    people = [builders.national_id() for _ in range(3)]
    first = builders.initialize_body(sender.resource_id, people, idempotent_key=key)
    more = [*people, builders.national_id()]
    other = builders.initialize_body(sender.resource_id, more, idempotent_key=key)
    assert (await client.post(INITIALIZE, json=first, headers=sender.headers)).status_code == 200
    response = await client.post(INITIALIZE, json=other, headers=sender.headers)
    assert response.status_code == 409, response.text
    assert response.json()["errorCode"] == 1034
    assert await db.fetchval("SELECT count(*) FROM correspondences WHERE idempotent_key = $1::uuid", key) == 3


async def test_another_owner_with_the_same_key_and_several_recipients_is_independent(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, dev_issuer: DevIssuer
) -> None:
    key = str(uuid.uuid4())
    other = await _another_owner(db, dev_issuer)
    people = [builders.national_id() for _ in range(3)]
    mine = builders.initialize_body(sender.resource_id, people, idempotent_key=key)
    theirs = builders.initialize_body(other.resource_id, people, idempotent_key=key)
    first = await client.post(INITIALIZE, json=mine, headers=sender.headers)
    second = await client.post(INITIALIZE, json=theirs, headers=other.headers)
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert "idempotent-replayed" not in second.headers
    mine_ids = {c["correspondenceId"] for c in first.json()["correspondences"]}
    theirs_ids = {c["correspondenceId"] for c in second.json()["correspondences"]}
    assert not mine_ids & theirs_ids
    assert await db.fetchval("SELECT count(*) FROM correspondences WHERE idempotent_key = $1::uuid", key) == 6
    again = await client.post(INITIALIZE, json=theirs, headers=other.headers)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == second.json()


# --- the multipart Initialize takes the key too ------------------------------------------------------

UPLOAD = INITIALIZE + "/upload"


def _form(sender: Sender, people: list[str], key: str) -> dict[str, Any]:
    return {
        "Correspondence.ResourceId": sender.resource_id,
        "Correspondence.SendersReference": "case-upload",
        "Correspondence.Content.Language": "nb",
        "Correspondence.Content.MessageTitle": "Vedtak med vedlegg",
        "Correspondence.Content.MessageBody": "Se vedlegget.",
        "Correspondence.Content.Attachments[0].FileName": "vedtak.pdf",
        "Correspondence.Content.Attachments[0].SendersReference": "doc-1",
        "Recipients": people,
        "IdempotentKey": key,
    }


async def test_a_multipart_initialize_with_several_recipients_replays_and_guards_its_files(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    key = str(uuid.uuid4())
    fields = _form(sender, [builders.national_id() for _ in range(2)], key)

    def files(data: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
        return [("attachments", ("vedtak.pdf", data, "application/pdf"))]

    first = await client.post(UPLOAD, data=fields, files=files(b"%PDF-1.7 one"), headers=sender.headers)
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    again = await client.post(UPLOAD, data=fields, files=files(b"%PDF-1.7 one"), headers=sender.headers)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # The same form with another file is another payload.
    changed = await client.post(UPLOAD, data=fields, files=files(b"%PDF-1.7 two"), headers=sender.headers)
    assert changed.status_code == 409, changed.text
    assert changed.json()["errorCode"] == 1034
    assert await db.fetchval("SELECT count(*) FROM correspondences WHERE idempotent_key = $1::uuid", key) == 2
    attachments = await db.fetchval(
        "SELECT count(*) FROM attachments WHERE resource_id = $1", sender.resource_id
    )
    assert attachments == 1
