"""Initialize's group commit (correspondence/use_cases/group_write.py): concurrent requests are
written together by one statement, and each gets exactly the rows and the answer it would get
alone; a statement that fails for one request's value fails only that request."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.correspondence.use_cases.group_write import InitializeWriter
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders
from tests.conftest import INITIALIZE, Sender

PERSON = "urn:altinn:person:identifier-no:"


async def test_concurrent_requests_get_the_rows_and_answers_each_would_get_alone(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, services: Services
) -> None:
    reserved = builders.national_id()
    await registry.set_contact(db, party=PERSON + reserved, email="r@x.no", mobile=None, reserved=True)
    with_email = builders.national_id()
    await registry.set_contact(db, party=PERSON + with_email, email="p@x.no", mobile=None, reserved=False)
    note = builders.notification(notificationChannel="Email")
    due = (datetime.now(UTC) + timedelta(days=40)).isoformat()
    bodies: list[dict[str, Any]] = []
    for i in range(30):
        if i == 7:  # a single reserved recipient: 422 1030, nothing written
            recipients = [reserved]
        elif i == 8:  # reserved among others: that one Reserved, the rest written
            recipients = [reserved, builders.national_id()]
        elif i % 3 == 0:
            recipients = [with_email if i == 0 else builders.national_id() for _ in range(1)]
        else:
            recipients = [f"0192:{builders.org_number()}" for _ in range(1 + i % 4)]
        extra: dict[str, Any] = {"dueDateTime": due} if i % 2 else {}
        bodies.append(
            builders.initialize_body(sender.resource_id, recipients, notification_block=note, **extra)
        )
    grouped_before = services.initialize_writer.grouped
    responses = await asyncio.gather(
        *(client.post(INITIALIZE, json=b, headers=sender.headers) for b in bodies)
    )
    assert services.initialize_writer.grouped > grouped_before  # some went in a group
    for i, (body, response) in enumerate(zip(bodies, responses, strict=True)):
        if i == 7:
            assert response.status_code == 422 and response.json()["errorCode"] == 1030, response.text
            continue
        assert response.status_code == 200, response.text
        items = response.json()["correspondences"]
        assert len(items) == len(body["recipients"])
        ids = [uuid.UUID(item["correspondenceId"]) for item in items]
        rows = await db.fetch(
            "SELECT id, status, due_date_time, content_id FROM correspondences WHERE id = ANY($1)", ids
        )
        assert {r["id"] for r in rows} == set(ids)
        assert len({r["content_id"] for r in rows}) == 1  # one content row per request
        expected_status = {it["correspondenceId"]: it["status"] for it in items}
        for r in rows:
            want = expected_status[str(r["id"])]
            assert r["status"] == (10 if want == "Reserved" else 1)
            assert (r["due_date_time"] is not None) == bool(i % 2)
        # Initialized and the first status are not stored (migration 0023): initial_status says which.
        stored = await db.fetchval(
            "SELECT count(*) FROM correspondence_statuses WHERE correspondence_id = ANY($1)", ids
        )
        assert stored == 0
        initial = await db.fetch("SELECT id, initial_status FROM correspondences WHERE id = ANY($1)", ids)
        assert {str(r["id"]): r["initial_status"] for r in initial} == {
            cid: 10 if want == "Reserved" else 1 for cid, want in expected_status.items()
        }
        orders = await db.fetch(
            "SELECT id, is_reminder, status FROM notification_orders WHERE correspondence_id = ANY($1)", ids
        )
        answered = {n["orderId"] for item in items for n in item["notifications"]}
        assert {str(o["id"]) for o in orders} == answered
        jobs = await db.fetch(
            "SELECT task, payload FROM jobs WHERE task IN ('correspondence.publish', 'correspondence.due')"
            " AND payload->'ids' ?| $1::text[]",
            [str(x) for x in ids],
        )
        publish = [j for j in jobs if j["task"] == "correspondence.publish"]
        assert len(publish) == 1 and json.loads(publish[0]["payload"]) == {"ids": [str(x) for x in ids]}
        assert len([j for j in jobs if j["task"] == "correspondence.due"]) == (1 if i % 2 else 0)
        events = await db.fetch("SELECT type, ids FROM event_outbox WHERE ids && $1::uuid[]", ids)
        by_type = {e["type"]: list(e["ids"]) for e in events}
        unreserved = [x for x, item in zip(ids, items, strict=True) if item["status"] != "Reserved"]
        assert by_type.get("correspondenceinitialized", []) == unreserved
        assert len(events) == len(by_type)  # one row per type, for this request only
    written = await db.fetchval(
        "SELECT count(*) FROM correspondences WHERE resource_id = $1 AND recipient = $2",
        sender.resource_id,
        PERSON + reserved,
    )
    assert written == 1  # request 8's Reserved one; request 7 wrote nothing


@pytest.mark.parametrize("together", [2, 5])
async def test_a_request_the_group_statement_cannot_write_fails_alone(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, services: Services, together: int
) -> None:
    now = datetime.now(UTC)
    shared_content = uuid.uuid4()

    def args(content_id: uuid.UUID) -> list[Any]:
        cid = uuid.uuid4()
        recipient = f"urn:altinn:organization:identifier-no:{builders.org_number()}"
        return [
            content_id, "nb", "Tittel", "", "Tekst", "[]", "{}", "[]", None, [cid], [recipient],
            sender.resource_id, "urn:altinn:organization:identifier-no:" + sender.org, sender.org, "ref",
            None, now, None, None, False, False, False, None, b"", [None], [None], None, 0, 0, now,
            now + timedelta(days=7), now, True, False, False, [], [], False,
        ]  # fmt: skip

    writer = InitializeWriter(services.pool)
    # The first and the last share a content id: the group statement fails on its primary key.
    others = [args(uuid.uuid4()) for _ in range(together - 2)]
    batch = [args(shared_content), *others, args(shared_content)]
    results = await asyncio.gather(*(writer.write(a) for a in batch), return_exceptions=True)
    assert isinstance(results[-1], asyncpg.UniqueViolationError)
    for a, result in zip(batch[:-1], results[:-1], strict=True):
        assert not isinstance(result, BaseException), result
        assert result[0]["written"]
        assert await db.fetchval("SELECT count(*) FROM correspondences WHERE id = $1", a[9][0]) == 1
    assert await db.fetchval("SELECT count(*) FROM correspondences WHERE id = $1", batch[-1][9][0]) == 0
