"""Recall and pause (issue 13, part 2), against the service through its API and its job worker:
e-mails go to a real SMTP server process, time is moved with the clock."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.adapters import open_email_sender
from correspondence.app import build_worker
from correspondence.auth.tokens import DevIssuer
from correspondence.events.use_cases.dispatch import dispatch_outbox
from correspondence.kit import clock
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders
from tests.conftest import INITIALIZE, Sender
from tests.notification_servers import SmtpServer, start_smtp_server

ORG = "urn:altinn:organization:identifier-no:"
EXT = "/ext/api/v1"
WRITE = "altinn:correspondence.write altinn:serviceowner"
READ = "altinn:correspondence.read"

Notifier = Callable[[], Awaitable[Services]]


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    server = start_smtp_server(tmp_path_factory.mktemp("smtp") / "messages.jsonl")
    yield server
    server.stop()


@pytest.fixture
async def notifier(services: Services, smtp: SmtpServer) -> AsyncIterator[Notifier]:
    """The service's own wiring, with e-mail going to the test's SMTP server."""
    opened: list[Services] = []

    async def make() -> Services:
        settings = services.settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "smtp_tls": "none",
                "notification_retry_seconds": 60.0,
                "notification_max_attempts": 3,
            }
        )
        svc = dataclasses.replace(services, settings=settings, worker=None)
        svc.email = open_email_sender(settings)
        opened.append(svc)
        return svc

    yield make
    for svc in opened:
        await svc.close_messaging()


async def drain(svc: Services) -> None:
    worker = build_worker(svc)
    while await worker.run_once():
        pass


async def another_sender(db: asyncpg.Connection, dev_issuer: DevIssuer) -> Sender:
    org = builders.org_number()
    resource_id = f"other-{uuid.uuid4().hex[:10]}"
    await registry.upsert_resource(
        db,
        resource_id=resource_id,
        owner_org=org,
        title="Other",
        resource_type="CorrespondenceService",
        confidential="NotConfidential",
        min_auth_level=0,
    )
    return Sender(org, resource_id, dev_issuer.mint(scope=WRITE, org=org))


async def recipient_with_email(db: asyncpg.Connection, kind: str = "post") -> tuple[str, str]:
    org = builders.org_number()
    mail = f"{kind}-{uuid.uuid4().hex[:10]}@example.no"
    await registry.set_contact(db, party=ORG + org, email=mail, mobile=None, reserved=None)
    return org, mail


EMAIL_WITH_REMINDER = {
    "notificationTemplate": "GenericAltinnMessage",
    "notificationChannel": "Email",
    "sendReminder": True,
}


async def send(
    client: httpx.AsyncClient, sender: Sender, orgs: list[str], **correspondence: Any
) -> list[str]:
    body = builders.initialize_body(
        sender.resource_id,
        [f"0192:{o}" for o in orgs],
        notification_block=dict(EMAIL_WITH_REMINDER),
        **correspondence,
    )
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    return [c["correspondenceId"] for c in response.json()["correspondences"]]


async def recall(client: httpx.AsyncClient, sender: Sender, cid: str) -> dict[str, Any]:
    response = await client.post(f"{EXT}/correspondences/{cid}/recall", headers=sender.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def state(db: asyncpg.Connection, cid: str) -> tuple[int, list[tuple[bool, str]]]:
    """The current status and the orders' (is reminder, processing status)."""
    status = await db.fetchval("SELECT status FROM correspondences WHERE id = $1", uuid.UUID(cid))
    orders = await db.fetch(
        "SELECT is_reminder, processing_status FROM notification_orders WHERE correspondence_id = $1"
        " ORDER BY is_reminder",
        uuid.UUID(cid),
    )
    return status, [(o["is_reminder"], o["processing_status"]) for o in orders]


async def events_of(db: asyncpg.Connection, cid: str) -> list[str]:
    rows = await db.fetch("SELECT type FROM event_outbox WHERE $1 = ANY(ids) ORDER BY id", uuid.UUID(cid))
    return [r["type"] for r in rows]


def later(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


# --- recall ------------------------------------------------------------------------------------------


async def test_recall_before_publish_purges_and_cancels_so_nothing_is_ever_sent(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    org, mail = await recipient_with_email(db)
    [cid] = await send(client, sender, [org], requestedPublishTime=later(1))

    result = await recall(client, sender, cid)
    assert result == {
        "correspondences": 1,
        "purged": 1,
        "alreadyPurged": 0,
        "published": 0,
        "notificationsCancelled": 1,
        "remindersCancelled": 1,
    }
    clock.shift(timedelta(days=10))  # past the publish time and the reminder's day
    await drain(svc)

    assert smtp.messages(mail) == []
    assert await state(db, cid) == (8, [(False, "Order_Cancelled"), (True, "Order_Cancelled")])
    assert await events_of(db, cid) == [
        "correspondenceinitialized",
        "correspondencepurged",
        "correspondencerecalled",
    ]
    details = (await client.get(f"{INITIALIZE}/{cid}/details", headers=sender.headers)).json()
    cancelled = [n["processingStatus"]["status"] for n in details["notifications"]]
    assert cancelled == ["Order_Cancelled", "Order_Cancelled"]
    assert details["notifications"][0]["processingStatus"]["description"] == (
        "Order processing was stopped due to order being cancelled."
    )


async def test_recalling_twice_is_harmless(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    org, _ = await recipient_with_email(db)
    [cid] = await send(client, sender, [org], requestedPublishTime=later(1))
    await recall(client, sender, cid)

    again = await recall(client, sender, cid)
    assert again == {
        "correspondences": 1,
        "purged": 0,
        "alreadyPurged": 1,
        "published": 0,
        "notificationsCancelled": 0,
        "remindersCancelled": 0,
    }
    assert (await events_of(db, cid)).count("correspondencerecalled") == 1
    history = await db.fetch(
        "SELECT status FROM correspondence_statuses WHERE correspondence_id = $1 AND status = 8",
        uuid.UUID(cid),
    )
    assert len(history) == 1


async def test_recall_after_publish_keeps_it_published_and_cancels_the_reminder(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    org, mail = await recipient_with_email(db)
    [cid] = await send(client, sender, [org])
    await drain(svc)
    assert len(smtp.messages(mail)) == 1  # the main notification

    result = await recall(client, sender, cid)
    assert result["published"] == 1 and result["purged"] == 0
    assert (result["notificationsCancelled"], result["remindersCancelled"]) == (0, 1)
    clock.shift(timedelta(days=10))
    await drain(svc)

    assert len(smtp.messages(mail)) == 1  # no reminder
    assert await state(db, cid) == (2, [(False, "Order_Completed"), (True, "Order_Cancelled")])
    overview = await client.get(f"{INITIALIZE}/{cid}", headers=sender.headers)
    assert overview.json()["status"] == "Published"


async def test_recall_cancels_an_address_waiting_for_its_retry(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    org, mail = await recipient_with_email(db, kind="flaky1")  # refused once, then accepted
    [cid] = await send(client, sender, [org])
    await drain(svc)
    assert smtp.refusals(mail) == 1

    result = await recall(client, sender, cid)
    assert (result["notificationsCancelled"], result["remindersCancelled"]) == (1, 1)
    clock.shift(timedelta(days=10))
    await drain(svc)

    assert smtp.messages(mail) == [] and smtp.refusals(mail) == 1
    details = (await client.get(f"{INITIALIZE}/{cid}/details", headers=sender.headers)).json()
    main = next(n for n in details["notifications"] if not n["isReminder"])
    assert main["processingStatus"]["status"] == "Order_Cancelled"
    email = main["notificationStatusDetails"]["email"]
    assert email["sendStatus"]["status"] == "Email_Failed" and email["succeeded"] is False
    assert "Cancelled by the sender (recall)" in email["sendStatus"]["description"]
    assert "correspondencenotificationfailed" not in await events_of(db, cid)


async def test_resource_recall_purges_the_unpublished_and_keeps_the_published(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    orgs = [(await recipient_with_email(db))[0] for _ in range(3)]
    [published] = await send(client, sender, orgs[:1])
    await drain(svc)
    waiting = await send(client, sender, orgs[1:], requestedPublishTime=later(1), sendersReference="bad-send")

    narrowed = await client.post(
        f"{EXT}/resources/{sender.resource_id}/recall",
        params={"sendersReference": "no-such-reference"},
        headers=sender.headers,
    )
    assert narrowed.status_code == 200 and narrowed.json()["correspondences"] == 0
    response = await client.post(
        f"{EXT}/resources/urn:altinn:resource:{sender.resource_id}/recall", headers=sender.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "correspondences": 3,
        "purged": 2,
        "alreadyPurged": 0,
        "published": 1,
        "notificationsCancelled": 2,
        "remindersCancelled": 3,
    }
    assert [(await state(db, c))[0] for c in waiting] == [8, 8]
    assert (await state(db, published))[0] == 2


async def test_resource_recall_by_sendersreference_and_time_window(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    org, _ = await recipient_with_email(db)
    [bad] = await send(client, sender, [org], requestedPublishTime=later(2), sendersReference="bad")
    [good] = await send(client, sender, [org], requestedPublishTime=later(2), sendersReference="good")
    [other_time] = await send(client, sender, [org], requestedPublishTime=later(5), sendersReference="bad")

    response = await client.post(
        f"{EXT}/resources/{sender.resource_id}/recall",
        params={"sendersReference": "bad", "from": later(1), "to": later(3)},
        headers=sender.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["purged"] == 1
    assert [(await state(db, c))[0] for c in (bad, good, other_time)] == [8, 1, 1]
    inverted = await client.post(
        f"{EXT}/resources/{sender.resource_id}/recall",
        params={"from": later(3), "to": later(1)},
        headers=sender.headers,
    )
    assert inverted.status_code == 400 and inverted.json()["errorCode"] == 1027
    odd = await client.post(
        f"{EXT}/resources/{sender.resource_id}/recall", params={"from": "yesterday"}, headers=sender.headers
    )
    assert odd.status_code == 400


# --- pause ---------------------------------------------------------------------------------------------


async def pause(client: httpx.AsyncClient, sender: Sender, verb: str = "pause") -> dict[str, Any]:
    response = await client.post(f"{EXT}/resources/{sender.resource_id}/{verb}", headers=sender.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_pause_holds_publishing_and_notifications_and_resume_releases_them_once(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    org, mail = await recipient_with_email(db)
    paused = await pause(client, sender)
    assert paused["paused"] is True and paused["pausedBy"] == ORG + sender.org
    [cid] = await send(client, sender, [org])  # Initialize still accepts
    await drain(svc)

    assert (await state(db, cid))[0] == 1  # ReadyForPublish: waiting
    assert smtp.messages(mail) == []
    shown = (await client.get(f"{EXT}/resources/{sender.resource_id}", headers=sender.headers)).json()
    assert shown["paused"] is True and shown["waitingToPublish"] == 1
    assert (await pause(client, sender))["pausedSince"] == paused["pausedSince"]  # pausing again: no change

    resumed = await pause(client, sender, "resume")
    assert resumed == {
        "resourceId": sender.resource_id,
        "paused": False,
        "pausedSince": None,
        "pausedBy": None,
        "waitingToPublish": 1,  # until the worker has run
    }
    await drain(svc)
    assert (await state(db, cid))[0] == 2 and len(smtp.messages(mail)) == 1
    shown = (await client.get(f"{EXT}/resources/{sender.resource_id}", headers=sender.headers)).json()
    assert shown["waitingToPublish"] == 0

    # Paused again before the reminder's day: the reminder waits, and comes once on resume.
    await pause(client, sender)
    clock.shift(timedelta(days=10))
    await drain(svc)
    assert len(smtp.messages(mail)) == 1
    assert (await state(db, cid))[1] == [(False, "Order_Completed"), (True, "Registered")]
    await pause(client, sender, "resume")
    await pause(client, sender, "resume")  # resuming again: nothing more
    await drain(svc)
    await drain(svc)
    assert len(smtp.messages(mail)) == 2
    assert await state(db, cid) == (2, [(False, "Order_Completed"), (True, "Order_Completed")])


async def test_pause_holds_an_address_waiting_for_its_retry(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    org, mail = await recipient_with_email(db, kind="flaky1")
    [cid] = await send(client, sender, [org])
    await drain(svc)
    assert smtp.refusals(mail) == 1
    await pause(client, sender)
    clock.shift(timedelta(minutes=10))  # past the retry
    await drain(svc)
    assert smtp.messages(mail) == [] and smtp.refusals(mail) == 1
    delivery = await db.fetchval("SELECT id FROM notification_deliveries WHERE address = $1", mail)
    queued = await db.fetchval(
        "SELECT count(*) FROM jobs WHERE task = 'notification.deliver' AND status = 0"
        " AND payload::text LIKE $1",
        f"%{delivery}%",
    )
    assert queued == 0  # nothing polls it while paused

    await pause(client, sender, "resume")
    await drain(svc)
    assert len(smtp.messages(mail)) == 1
    assert (await state(db, cid))[1][0] == (False, "Order_Completed")


async def test_pause_holds_due_date_events_until_resumed(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier
) -> None:
    svc = await notifier()
    org, _ = await recipient_with_email(db)
    [cid] = await send(client, sender, [org], dueDateTime=later(2))
    await drain(svc)
    await pause(client, sender)
    clock.shift(timedelta(days=3))
    await drain(svc)
    assert "correspondencereceiverneverread" not in await events_of(db, cid)

    await pause(client, sender, "resume")
    await drain(svc)
    assert (await events_of(db, cid)).count("correspondencereceiverneverread") == 1


async def test_pause_and_resume_are_events_for_the_owner(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, services: Services
) -> None:
    await pause(client, sender)
    await pause(client, sender, "resume")
    await dispatch_outbox(services.pool, base_url="http://test", batch_size=500)
    rows = await db.fetch(
        "SELECT type, source, resource, subject, alternativesubject, owner_org FROM events"
        " WHERE resource = $1 ORDER BY time, id",
        f"urn:altinn:resource:{sender.resource_id}",
    )
    assert [r["type"] for r in rows] == [
        "no.altinn.correspondence.resourcepaused",
        "no.altinn.correspondence.resourceresumed",
    ]
    assert {(r["source"], r["subject"], r["alternativesubject"], r["owner_org"]) for r in rows} == {
        ("http://test/ext/api/v1/resources", ORG + sender.org, f"/organisation/{sender.org}", sender.org)
    }


# --- who may -------------------------------------------------------------------------------------------


async def test_only_the_owner_with_the_write_scope_may_recall_or_pause(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, dev_issuer: DevIssuer
) -> None:
    org, _ = await recipient_with_email(db)
    [cid] = await send(client, sender, [org], requestedPublishTime=later(1))
    foreign = await another_sender(db, dev_issuer)
    callers = {
        "foreign owner": foreign.headers,
        "recipient": {"Authorization": "Bearer " + dev_issuer.mint(scope=READ, org=org)},
        "owner, read scope": {"Authorization": "Bearer " + dev_issuer.mint(scope=READ, org=sender.org)},
        "recipient with write scope": {"Authorization": "Bearer " + dev_issuer.mint(scope=WRITE, org=org)},
    }
    routes = [
        ("post", f"{EXT}/correspondences/{cid}/recall"),
        ("post", f"{EXT}/resources/{sender.resource_id}/recall"),
        ("post", f"{EXT}/resources/{sender.resource_id}/pause"),
        ("post", f"{EXT}/resources/{sender.resource_id}/resume"),
        ("get", f"{EXT}/resources/{sender.resource_id}"),
    ]
    for who, headers in callers.items():
        for method, path in routes:
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 403, (who, path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
    for method, path in routes:
        assert (await client.request(method, path)).status_code == 401
    assert await state(db, cid) == (1, [(False, "Registered"), (True, "Registered")])
    assert (
        await db.fetchval("SELECT count(*) FROM resource_pauses WHERE resource_id = $1", sender.resource_id)
        == 0
    )


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient, sender: Sender) -> None:
    unknown = await client.post(f"{EXT}/correspondences/{uuid.uuid4()}/recall", headers=sender.headers)
    assert unknown.status_code == 404 and unknown.json()["errorCode"] == 1001
    malformed = await client.post(f"{EXT}/correspondences/not-an-id/recall", headers=sender.headers)
    assert malformed.status_code == 400
    for path in ("recall", "pause", "resume"):
        response = await client.post(
            f"{EXT}/resources/no-such-resource-{uuid.uuid4().hex}/{path}", headers=sender.headers
        )
        assert response.status_code == 404 and response.json()["errorCode"] == 9201
    odd = await client.get(f"{EXT}/resources/a%00b", headers=sender.headers)
    assert odd.status_code == 404


async def test_the_routes_are_documented_apart_from_the_real_services(client: httpx.AsyncClient) -> None:
    document = (await client.get("/correspondence/api/v1/swagger/v1/swagger.json")).json()
    ours = {p: ops for p, ops in document["paths"].items() if p.startswith(EXT)}
    assert {
        f"{EXT}/correspondences/{{correspondenceId}}/recall",
        f"{EXT}/resources/{{resourceId}}/recall",
        f"{EXT}/resources/{{resourceId}}",
        f"{EXT}/resources/{{resourceId}}/pause",
        f"{EXT}/resources/{{resourceId}}/resume",
    } <= set(ours)
    for ops in ours.values():
        for op in ops.values():
            assert op["tags"] == ["Extensions"]
    for name in ("RecallResultExt", "ResourceStateExt"):
        assert name in document["components"]["schemas"]
