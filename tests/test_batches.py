"""Batches (issue 13, README "Batches"): one correspondence to many recipients, added in idempotent
pages, committed or cancelled as a whole, created and published by the worker as ordinary
correspondences, followed by progress counts and a `batchcompleted` event."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.auth.tokens import DevIssuer
from correspondence.batch import repository as batch_repo
from correspondence.batch.use_cases.create_correspondences import create_next_chunk
from correspondence.kit import clock
from correspondence.limits.use_cases.notification_cap import NotificationCap
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders, test_cli
from tests import test_notification_sending as sending
from tests.conftest import INITIALIZE, Sender
from tests.test_notification_sending import Notifier, drain, generic

# The SMTP server, SMS gateway and the services wired to them, as the notification tests use them.
smtp, gateway, notifier = sending.smtp, sending.gateway, sending.notifier

BATCHES = "/ext/api/v1/batches"
ORG = "urn:altinn:organization:identifier-no:"
PERSON = "urn:altinn:person:identifier-no:"


def batch_body(sender: Sender, **correspondence: Any) -> dict[str, Any]:
    body = builders.initialize_body(sender.resource_id, ["0192:" + builders.org_number()], **correspondence)
    body.pop("recipients")
    return body


def orgs(n: int) -> list[str]:
    return [f"0192:{builders.org_number()}" for _ in range(n)]


async def new_batch(client: httpx.AsyncClient, sender: Sender, **correspondence: Any) -> dict[str, Any]:
    response = await client.post(BATCHES, json=batch_body(sender, **correspondence), headers=sender.headers)
    assert response.status_code == 201, response.text
    batch: dict[str, Any] = response.json()
    return batch


async def put_page(
    client: httpx.AsyncClient, sender: Sender, batch_id: str, page: int, recipients: list[str]
) -> httpx.Response:
    return await client.put(
        f"{BATCHES}/{batch_id}/recipients/{page}", json={"recipients": recipients}, headers=sender.headers
    )


async def show(client: httpx.AsyncClient, sender: Sender, batch_id: str) -> dict[str, Any]:
    response = await client.get(f"{BATCHES}/{batch_id}", headers=sender.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def follow_to_the_end(
    svc: Services, client: httpx.AsyncClient, sender: Sender, batch_id: str, *, notifications: bool = False
) -> None:
    """Run the worker, moving the clock past the follower's pauses, until the batch is done and its
    notifications are counted."""
    for _ in range(40):
        await drain(svc)
        batch = await show(client, sender, batch_id)
        counts = batch["counts"]
        settled = counts["notified"] + counts["notificationFailed"]
        if batch["status"] == "Completed" and (settled == counts["published"] or not notifications):
            return
        clock.shift(timedelta(seconds=31))
    raise AssertionError(f"batch {batch_id} did not finish: {batch}")


async def make_chunk(
    conn: asyncpg.Connection,
    services: Services,
    batch_id: uuid.UUID,
    size: int,
    cap: NotificationCap | None = None,
) -> bool:
    """What the worker's `batch.create` job does once: create the batch's next chunk."""
    return await create_next_chunk(
        conn,
        pool=services.pool,
        resources=services.resources,
        batch_id=batch_id,
        chunk_size=size,
        reminder_delay=timedelta(days=7),
        notification_cap=cap,
    )


@pytest.fixture
async def foreign(db: asyncpg.Connection, dev_issuer: DevIssuer) -> Sender:
    """Another service owner with a resource of its own."""
    org = builders.org_number()
    resource_id = f"test-resource-{uuid.uuid4().hex[:10]}"
    await registry.upsert_resource(
        db,
        resource_id=resource_id,
        owner_org=org,
        title="Other",
        resource_type="CorrespondenceService",
        confidential="NotConfidential",
        min_auth_level=0,
    )
    token = dev_issuer.mint(scope="altinn:correspondence.write altinn:serviceowner", org=org)
    return Sender(org, resource_id, token)


# --- creating, pages, commit and cancel --------------------------------------------------------


async def test_a_new_batch_is_open_with_nothing_in_it(client: httpx.AsyncClient, sender: Sender) -> None:
    batch = await new_batch(client, sender)
    assert batch["status"] == "Open"
    assert batch["resourceId"] == sender.resource_id
    assert batch["counts"] == {
        "pages": 0,
        "recipients": 0,
        "created": 0,
        "published": 0,
        "failed": 0,
        "purged": 0,
        "notified": 0,
        "notificationFailed": 0,
    }
    assert batch["committed"] is None and batch["completed"] is None and batch["cancelled"] is None
    assert await show(client, sender, batch["id"]) == batch


async def test_a_batch_is_checked_as_initialize_checks_its_correspondence(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    past = batch_body(sender, dueDateTime=(datetime.now(UTC) - timedelta(days=1)).isoformat())
    response = await client.post(BATCHES, json=past, headers=sender.headers)
    assert response.status_code == 400 and response.json()["errorCode"] == 1008, response.text

    unknown = batch_body(sender)
    unknown["correspondence"]["resourceId"] = "no-such-resource-" + uuid.uuid4().hex[:8]
    response = await client.post(BATCHES, json=unknown, headers=sender.headers)
    assert response.status_code == 400 and response.json()["errorCode"] == 1036, response.text

    # Custom notification recipients are for one recipient; a batch has many (as Initialize says).
    custom = generic(customRecipients=[{"emailAddress": "a@example.no"}])
    response = await client.post(
        BATCHES, json=batch_body(sender, notification_block=custom), headers=sender.headers
    )
    assert response.status_code == 400, response.text

    response = await client.post(BATCHES, json={"correspondence": {}}, headers=sender.headers)
    assert response.status_code == 400, response.text
    # Nothing of the checks was kept.
    listed = await client.get(BATCHES, params={"resourceId": sender.resource_id}, headers=sender.headers)
    assert listed.json()["batches"] == []


async def test_the_same_idempotent_key_answers_the_first_batch_again(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    body = batch_body(sender)
    body["idempotentKey"] = str(uuid.uuid4())
    first = await client.post(BATCHES, json=body, headers=sender.headers)
    again = await client.post(BATCHES, json=body, headers=sender.headers)
    assert first.status_code == 201 and again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    body["correspondence"]["sendersReference"] = "another"
    other = await client.post(BATCHES, json=body, headers=sender.headers)
    assert other.status_code == 409 and other.json()["errorCode"] == 9106, other.text


async def test_pages_are_idempotent_and_cannot_change(client: httpx.AsyncClient, sender: Sender) -> None:
    batch = await new_batch(client, sender)
    one, two = orgs(3), orgs(2)
    first = await put_page(client, sender, batch["id"], 1, one)
    assert first.status_code == 201, first.text
    assert first.json() == {"batchId": batch["id"], "page": 1, "recipients": 3}
    again = await put_page(client, sender, batch["id"], 1, [r.replace("0192:", ORG) for r in one])
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true", again.text
    changed = await put_page(client, sender, batch["id"], 1, two)
    assert changed.status_code == 409 and changed.json()["errorCode"] == 9103, changed.text
    assert (await put_page(client, sender, batch["id"], 2, two)).status_code == 201
    counts = (await show(client, sender, batch["id"]))["counts"]
    assert (counts["pages"], counts["recipients"]) == (2, 5)


async def test_bad_pages_are_refused_and_leave_nothing_behind(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    batch = await new_batch(client, sender)
    one = orgs(2)
    assert (await put_page(client, sender, batch["id"], 1, one)).status_code == 201
    in_other_page = await put_page(client, sender, batch["id"], 2, [*orgs(1), one[0]])
    assert in_other_page.status_code == 400 and in_other_page.json()["errorCode"] == 9105, in_other_page.text
    twice = await put_page(client, sender, batch["id"], 3, [one[1], one[1]])
    assert twice.status_code == 400 and twice.json()["errorCode"] == 1006
    for page, recipients in [
        (4, ["not-a-recipient"]),
        (5, []),
        (6, [*orgs(1), PERSON + "12345678901"]),
        (0, orgs(1)),
        (1_000_001, orgs(1)),
    ]:
        response = await put_page(client, sender, batch["id"], page, recipients)
        assert response.status_code == 400, (page, response.text)
    for path in ("x", "-1", "1.5", "99999999999999999999999"):
        response = await client.put(
            f"{BATCHES}/{batch['id']}/recipients/{path}", json={"recipients": orgs(1)}, headers=sender.headers
        )
        assert response.status_code == 400, (path, response.text)
    too_many = [f"{ORG}{n:09d}" for n in range(10_001)]
    assert (await put_page(client, sender, batch["id"], 7, too_many)).status_code == 400
    counts = (await show(client, sender, batch["id"]))["counts"]
    assert (counts["pages"], counts["recipients"]) == (1, 2)


async def test_commit_needs_an_open_batch_with_recipients(client: httpx.AsyncClient, sender: Sender) -> None:
    batch = await new_batch(client, sender)
    url = f"{BATCHES}/{batch['id']}"
    empty = await client.post(url + "/commit", headers=sender.headers)
    assert empty.status_code == 400 and empty.json()["errorCode"] == 9104, empty.text
    page = orgs(2)
    await put_page(client, sender, batch["id"], 1, page)
    committed = await client.post(url + "/commit", headers=sender.headers)
    assert committed.status_code == 200, committed.text
    assert committed.json()["status"] == "Committed" and committed.json()["committed"] is not None
    twice = await client.post(url + "/commit", headers=sender.headers)
    assert twice.status_code == 409 and twice.json()["errorCode"] == 9102, twice.text
    late = await put_page(client, sender, batch["id"], 2, orgs(1))
    assert late.status_code == 409 and late.json()["errorCode"] == 9102
    # The page it has, sent again (a retry whose answer was lost), is still a replay.
    assert (await put_page(client, sender, batch["id"], 1, page)).status_code == 200
    cancel = await client.post(url + "/cancel", headers=sender.headers)
    assert cancel.status_code == 409 and cancel.json()["errorCode"] == 9102


async def test_a_cancelled_batch_never_sends(
    client: httpx.AsyncClient, sender: Sender, services: Services, db: asyncpg.Connection
) -> None:
    batch = await new_batch(client, sender)
    await put_page(client, sender, batch["id"], 1, orgs(3))
    cancelled = await client.post(f"{BATCHES}/{batch['id']}/cancel", headers=sender.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "Cancelled", cancelled.text
    commit = await client.post(f"{BATCHES}/{batch['id']}/commit", headers=sender.headers)
    assert commit.status_code == 409
    await drain(services)
    found = await db.fetchval(
        "SELECT count(*) FROM correspondences WHERE resource_id = $1", sender.resource_id
    )
    assert found == 0


async def test_another_owners_batch_is_forbidden_and_an_unknown_one_not_found(
    client: httpx.AsyncClient, sender: Sender, foreign: Sender, dev_issuer: DevIssuer
) -> None:
    batch = await new_batch(client, sender)
    url = f"{BATCHES}/{batch['id']}"
    for method, path, body in [
        ("GET", url, None),
        ("PUT", url + "/recipients/1", {"recipients": orgs(1)}),
        ("POST", url + "/commit", None),
        ("POST", url + "/cancel", None),
    ]:
        response = await client.request(method, path, json=body, headers=foreign.headers)
        assert response.status_code == 403, (method, path, response.text)
        unknown = await client.request(
            method, path.replace(batch["id"], str(uuid.uuid4())), json=body, headers=sender.headers
        )
        assert unknown.status_code == 404 and unknown.json()["errorCode"] == 9101, unknown.text
    # Another owner's resource: neither a batch for it nor its list.
    response = await client.post(BATCHES, json=batch_body(foreign), headers=sender.headers)
    assert response.status_code == 403
    listed = await client.get(BATCHES, params={"resourceId": foreign.resource_id}, headers=sender.headers)
    assert listed.status_code == 403
    assert (await client.get(BATCHES, headers=foreign.headers)).json()["batches"] == []
    # A reader is no sender; no token is no caller.
    reader = dev_issuer.mint(scope="altinn:correspondence.read", org=sender.org)
    assert (await client.get(url, headers={"Authorization": f"Bearer {reader}"})).status_code == 403
    assert (await client.get(url)).status_code == 401
    assert (await client.get(BATCHES + "/not-a-uuid", headers=sender.headers)).status_code == 400


async def test_the_owner_lists_its_batches_newest_first(client: httpx.AsyncClient, sender: Sender) -> None:
    first = await new_batch(client, sender)
    second = await new_batch(client, sender)
    listed = await client.get(BATCHES, params={"resourceId": sender.resource_id}, headers=sender.headers)
    assert [b["id"] for b in listed.json()["batches"]] == [second["id"], first["id"]]
    paged = await client.get(BATCHES, params={"limit": 1, "offset": 1}, headers=sender.headers)
    assert [b["id"] for b in paged.json()["batches"]] == [first["id"]]
    assert (await client.get(BATCHES, params={"limit": 0}, headers=sender.headers)).status_code == 400


# --- through the worker ------------------------------------------------------------------------


async def test_a_committed_batch_becomes_ordinary_published_and_notified_correspondences(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier
) -> None:
    svc = await notifier(batch_chunk_size=1000)
    with_mail = orgs(5)
    for recipient in with_mail:
        await registry.set_contact(
            db, party=ORG + recipient[5:], email=f"{recipient[5:]}@example.no", mobile=None, reserved=None
        )
    reserved = builders.national_id()
    await registry.set_contact(db, party=PERSON + reserved, email=None, mobile=None, reserved=True)
    recipients = [*with_mail, reserved, *orgs(2495)]  # 2,501: chunks of 1,000, 1,000 and 501
    batch = await new_batch(client, sender, notification_block=generic())
    for page, start in enumerate(range(0, len(recipients), 1000), start=1):
        assert (
            await put_page(client, sender, batch["id"], page, recipients[start : start + 1000])
        ).status_code == 201
    # Nothing exists before commit.
    assert (
        await db.fetchval("SELECT count(*) FROM correspondences WHERE resource_id = $1", sender.resource_id)
        == 0
    )
    hook = {"endPoint": "http://127.0.0.1:9/hook", "typeFilter": "no.altinn.correspondence.batchcompleted"}
    subscribed = await client.post("/events/api/v1/subscriptions", json=hook, headers=sender.headers)
    assert subscribed.status_code == 201, subscribed.text
    commit = await client.post(f"{BATCHES}/{batch['id']}/commit", headers=sender.headers)
    assert commit.status_code == 200, commit.text

    await follow_to_the_end(svc, client, sender, batch["id"], notifications=True)

    done = await show(client, sender, batch["id"])
    assert done["status"] == "Completed" and done["completed"] is not None
    counts = done["counts"]
    assert counts["recipients"] == counts["created"] == 2501
    assert (counts["published"], counts["failed"], counts["purged"]) == (2500, 1, 0)
    assert (counts["notified"], counts["notificationFailed"]) == (5, 2495)
    rows = await db.fetch(
        "SELECT recipient, count(*) AS n FROM correspondences WHERE resource_id = $1 GROUP BY recipient",
        sender.resource_id,
    )
    assert len(rows) == 2501 and all(r["n"] == 1 for r in rows)
    # Ordinary correspondences: the API shows them as it shows any other.
    cid = await db.fetchval(
        "SELECT id FROM correspondences WHERE resource_id = $1 AND recipient = $2",
        sender.resource_id,
        ORG + with_mail[0][5:],
    )
    details = await client.get(f"{INITIALIZE}/{cid}/details", headers=sender.headers)
    assert details.status_code == 200 and details.json()["status"] == "Published", details.text
    failed = await db.fetchval(
        "SELECT status FROM correspondences WHERE resource_id = $1 AND recipient = $2",
        sender.resource_id,
        PERSON + reserved,
    )
    assert failed == 11  # Reserved at Initialize, Failed at publishing: as Initialize does it
    events = await db.fetch(
        "SELECT type, ids FROM event_outbox WHERE type = 'batchcompleted' AND $1 = ANY(ids)",
        uuid.UUID(batch["id"]),
    )
    assert len(events) == 1
    [event] = await db.fetch(
        "SELECT source, resource, subject, owner_org FROM events WHERE type = $1 AND resourceinstance = $2",
        "no.altinn.correspondence.batchcompleted",
        batch["id"],
    )
    assert event["source"].endswith("/ext/api/v1/batches")
    assert event["resource"] == "urn:altinn:resource:" + sender.resource_id
    assert (event["subject"], event["owner_org"]) == (ORG + sender.org, sender.org)
    # The owner's webhook subscriber is sent it (nothing listens there: the delivery is what counts).
    deliveries = await db.fetchval(
        "SELECT count(*) FROM event_deliveries WHERE subscription_id = $1", subscribed.json()["id"]
    )
    assert deliveries == 1
    await db.execute("UPDATE event_subscriptions SET deleted = now() WHERE id = $1", subscribed.json()["id"])


async def test_a_chunk_made_by_a_worker_that_died_is_not_made_twice(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, services: Services
) -> None:
    batch = await new_batch(client, sender)
    await put_page(client, sender, batch["id"], 1, orgs(7))
    await client.post(f"{BATCHES}/{batch['id']}/commit", headers=sender.headers)
    # A worker creates the first chunk (Initialize commits) and dies before its own commit.
    async with services.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        more = await make_chunk(conn, services, uuid.UUID(batch["id"]), 4)
        assert more
        await transaction.rollback()
    assert (
        await db.fetchval("SELECT count(*) FROM correspondences WHERE resource_id = $1", sender.resource_id)
        == 4
    )
    # The job runs again (its lease ran out), then the rest.
    small_chunks = services.settings.model_copy(update={"batch_chunk_size": 4})
    svc = dataclasses.replace(services, settings=small_chunks, worker=None)
    await follow_to_the_end(svc, client, sender, batch["id"])
    rows = await db.fetch(
        "SELECT recipient, count(*) AS n FROM correspondences WHERE resource_id = $1 GROUP BY recipient",
        sender.resource_id,
    )
    assert len(rows) == 7 and all(r["n"] == 1 for r in rows)
    counts = (await show(client, sender, batch["id"]))["counts"]
    assert (counts["created"], counts["published"]) == (7, 7)


async def test_recipients_initialize_refuses_are_counted_failed_with_the_reason(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, services: Services
) -> None:
    due = datetime.now(UTC) + timedelta(hours=1)
    batch = await new_batch(client, sender, dueDateTime=due.isoformat())
    await put_page(client, sender, batch["id"], 1, orgs(3))
    await client.post(f"{BATCHES}/{batch['id']}/commit", headers=sender.headers)
    clock.shift(timedelta(hours=2))  # the due date passes before the worker gets to it
    await follow_to_the_end(services, client, sender, batch["id"])
    done = await show(client, sender, batch["id"])
    assert done["status"] == "Completed"
    assert (done["counts"]["created"], done["counts"]["failed"]) == (0, 3)
    errors = await db.fetch("SELECT error FROM batch_recipients WHERE batch_id = $1", uuid.UUID(batch["id"]))
    assert {r["error"] for r in errors} == {"1008: DueDateTime cannot be prior to today"}


# --- the operator's verbs ----------------------------------------------------------------------

env = test_cli.env


async def test_operators_list_show_and_cancel_batches(
    env: None, client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    open_batch = await new_batch(client, sender)
    await put_page(client, sender, open_batch["id"], 1, orgs(2))
    committed = await new_batch(client, sender)
    await put_page(client, sender, committed["id"], 1, orgs(1))
    await client.post(f"{BATCHES}/{committed['id']}/commit", headers=sender.headers)

    listed = await test_cli.cli(["batch", "list", "--resource", sender.resource_id])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert [line.split()[:2] for line in lines] == [
        [committed["id"], "Committed"],
        [open_batch["id"], "Open"],
    ]
    shown = await test_cli.cli(["batch", "show", open_batch["id"]])
    assert shown.exit_code == 0 and "recipients 2" in shown.output, shown.output

    refused = await test_cli.cli(["batch", "cancel", committed["id"]])
    assert refused.exit_code == 1 and "Committed" in refused.output
    cancelled = await test_cli.cli(["batch", "cancel", open_batch["id"]])
    assert cancelled.exit_code == 0, cancelled.output
    assert (await show(client, sender, open_batch["id"]))["status"] == "Cancelled"
    assert (await test_cli.cli(["batch", "show", str(uuid.uuid4())])).exit_code == 1
    assert (await test_cli.cli(["batch", "show", "not-an-id"])).exit_code == 2


# --- the web sent view ---------------------------------------------------------------------------


async def test_the_sent_view_shows_batch_progress_and_cancels_an_open_batch(
    app: Any, client: httpx.AsyncClient, sender: Sender, foreign: Sender, services: Services
) -> None:
    open_batch = await new_batch(client, sender)
    await put_page(client, sender, open_batch["id"], 1, orgs(2))
    sending_batch = await new_batch(client, sender)
    await put_page(client, sender, sending_batch["id"], 1, orgs(4))
    await client.post(f"{BATCHES}/{sending_batch['id']}/commit", headers=sender.headers)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"Accept-Language": "en"}
    ) as b:
        b.cookies.set("corr_session", sender.token)
        sent = await b.get("/sent")
        assert 'href="/batches' in sent.text
        page = await b.get(f"/batches?resource={sender.resource_id}")
        assert page.status_code == 200, page.text
        rows = re.findall(r'data-testid="batch-row" data-id="([^"]+)"', page.text)
        assert rows == [sending_batch["id"], open_batch["id"]]
        assert 'http-equiv="refresh"' in page.text  # one is being sent
        await follow_to_the_end(services, client, sender, sending_batch["id"])
        done = await b.get(f"/batches?resource={sender.resource_id}")
        assert 'http-equiv="refresh"' not in done.text
        assert re.search(r'data-testid="batch-published">4<', done.text)

        csrf = re.search(r'name="csrf" value="([^"]+)"', done.text)
        assert csrf
        cancelled = await b.post(f"/batches/{open_batch['id']}/cancel", data={"csrf": csrf.group(1)})
        assert cancelled.status_code == 303
        assert (await show(client, sender, open_batch["id"]))["status"] == "Cancelled"
        forged = await b.post(f"/batches/{sending_batch['id']}/cancel", data={"csrf": "guess"})
        assert forged.status_code == 403
        other = await b.get(f"/batches?resource={foreign.resource_id}")
        assert other.status_code == 403

        b.cookies.set("corr_session", foreign.token)
        theirs = await b.get("/batches")
        assert "batch-row" not in theirs.text
        refused = await b.post(
            f"/batches/{sending_batch['id']}/cancel", data={"csrf": csrf_of_page(theirs.text)}
        )
        assert refused.status_code == 303  # back to the list, with the error as the flash
        assert (await show(client, sender, sending_batch["id"]))["status"] == "Completed"


def csrf_of_page(text: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    assert found
    return found.group(1)


# --- what recall builds on ---------------------------------------------------------------------


async def test_recall_can_list_a_batchs_correspondences_and_stop_the_rest(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, services: Services
) -> None:
    batch = await new_batch(client, sender)
    await put_page(client, sender, batch["id"], 1, orgs(6))
    await client.post(f"{BATCHES}/{batch['id']}/commit", headers=sender.headers)
    batch_id = uuid.UUID(batch["id"])
    async with services.pool.acquire() as conn, conn.transaction():
        await make_chunk(conn, services, batch_id, 3)
        found = [
            cid async for chunk in batch_repo.correspondence_ids(conn, batch_id, chunk=2) for cid in chunk
        ]
        assert await batch_repo.stop_creating(conn, batch_id, "Recalled before it was created") == 3
    made = await db.fetch("SELECT id FROM correspondences WHERE resource_id = $1", sender.resource_id)
    assert sorted(found) == sorted(r["id"] for r in made) and len(found) == 3
    await follow_to_the_end(services, client, sender, batch["id"])
    counts = (await show(client, sender, batch["id"]))["counts"]
    assert (counts["created"], counts["published"], counts["failed"]) == (3, 3, 3)


async def test_recalling_a_committed_batch_purges_what_is_unpublished_and_creates_no_more(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, services: Services, foreign: Sender
) -> None:
    later = datetime.now(UTC) + timedelta(days=2)
    batch = await new_batch(client, sender, requestedPublishTime=later.isoformat())
    await put_page(client, sender, batch["id"], 1, orgs(5))
    await client.post(f"{BATCHES}/{batch['id']}/commit", headers=sender.headers)
    batch_id = uuid.UUID(batch["id"])
    async with services.pool.acquire() as conn, conn.transaction():
        await make_chunk(conn, services, batch_id, 2)
    assert (await client.post(f"{BATCHES}/{batch['id']}/recall", headers=foreign.headers)).status_code == 403
    unknown = await client.post(f"{BATCHES}/{uuid.uuid4()}/recall", headers=sender.headers)
    assert unknown.status_code == 404
    recalled = await client.post(f"{BATCHES}/{batch['id']}/recall", headers=sender.headers)
    assert recalled.status_code == 200, recalled.text
    assert (recalled.json()["correspondences"], recalled.json()["purged"]) == (2, 2)
    await follow_to_the_end(services, client, sender, batch["id"])
    statuses = await db.fetch("SELECT status FROM correspondences WHERE resource_id = $1", sender.resource_id)
    assert [r["status"] for r in statuses] == [8, 8]  # PurgedByAltinn; the other 3 never created
    counts = (await show(client, sender, batch["id"]))["counts"]
    assert (counts["created"], counts["failed"], counts["published"]) == (2, 3, 0)
    again = await client.post(f"{BATCHES}/{batch['id']}/recall", headers=sender.headers)
    assert (again.json()["purged"], again.json()["alreadyPurged"]) == (0, 2)


async def test_recalling_an_open_batch_cancels_it(client: httpx.AsyncClient, sender: Sender) -> None:
    batch = await new_batch(client, sender)
    await put_page(client, sender, batch["id"], 1, orgs(2))
    recalled = await client.post(f"{BATCHES}/{batch['id']}/recall", headers=sender.headers)
    assert recalled.status_code == 200 and recalled.json()["correspondences"] == 0
    assert (await show(client, sender, batch["id"]))["status"] == "Cancelled"
    commit = await client.post(f"{BATCHES}/{batch['id']}/commit", headers=sender.headers)
    assert commit.status_code == 409


async def test_a_batch_cannot_pass_its_owners_daily_notification_cap(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, services: Services
) -> None:
    from correspondence.limits.setup import open_limits

    cap = open_limits(services.settings.model_copy(update={"daily_notification_cap": 3})).notification_cap
    assert cap is not None
    note = builders.notification(notificationChannel="Email")
    batch = await new_batch(client, sender, notification=note)
    await put_page(client, sender, batch["id"], 1, orgs(4))  # 4 main + 4 reminders > 3
    await client.post(f"{BATCHES}/{batch['id']}/commit", headers=sender.headers)
    async with services.pool.acquire() as conn, conn.transaction():
        await make_chunk(conn, services, uuid.UUID(batch["id"]), 10, cap)
    assert (
        await db.fetchval("SELECT count(*) FROM correspondences WHERE resource_id = $1", sender.resource_id)
        == 0
    )
    errors = await db.fetch("SELECT error FROM batch_recipients WHERE batch_id = $1", uuid.UUID(batch["id"]))
    assert len(errors) == 4 and all(r["error"].startswith("9430:") for r in errors)
