"""Events: every lifecycle change reaches subscribed webhooks as a signed CloudEvent, once, even
after the subscriber was down for a while (a real HTTP receiver on 127.0.0.1)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.auth.caller import Caller
from correspondence.auth.tokens import DevIssuer
from correspondence.events import signing
from correspondence.events.schemas import SubscriptionRequestModel
from correspondence.events.use_cases import subscribe as subscribe_use_case
from correspondence.events.use_cases.deliver import DeliveryPolicy, deliver_due
from correspondence.kit import clock
from correspondence.kit.errors import PlainError
from correspondence.services import Services
from tests import builders
from tests.attachment_fixtures import drain, published_attachment
from tests.conftest import INITIALIZE, Sender
from tests.webhook_receiver import Receiver

SUBSCRIPTIONS = "/events/api/v1/subscriptions"
READ = "altinn:correspondence.read"
ORG_URN = "urn:altinn:organization:identifier-no:"
PERSON_URN = "urn:altinn:person:identifier-no:"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def subscribe(client: httpx.AsyncClient, token: str, url: str, **filters: str) -> dict[str, Any]:
    response = await client.post(SUBSCRIPTIONS, json={"endPoint": url, **filters}, headers=bearer(token))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def send(client: httpx.AsyncClient, sender: Sender, recipients: list[str], **kw: Any) -> list[str]:
    body = builders.initialize_body(sender.resource_id, recipients, **kw)
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    return [i["correspondenceId"] for i in response.json()["correspondences"]]


def verified(received: Any, secret: str) -> bool:
    h = received.headers
    return signing.verify(
        secret, h["webhook-id"], int(h["webhook-timestamp"]), received.body, h["webhook-signature"]
    )


async def test_sender_gets_signed_cloud_events_for_initialize_and_publish(
    client: httpx.AsyncClient, sender: Sender, services: Services, receiver: Receiver
) -> None:
    sub = await subscribe(client, sender.token, receiver.url)
    assert sub["secret"].startswith("whsec_") and sub["consumer"] == ORG_URN + sender.org
    person = builders.national_id()
    [cid] = await send(client, sender, [person])
    await drain(services)

    assert sorted(receiver.types()) == ["correspondenceinitialized", "correspondencepublished"]
    for got in receiver.received:
        assert got.headers["content-type"] == "application/cloudevents+json"
        assert verified(got, sub["secret"])
        assert not verified(got, signing.new_secret())
        assert got.headers["webhook-id"] == got.json()["id"]
    events = {str(e["type"]).rsplit(".", 1)[1]: e for e in receiver.events()}
    published = events["correspondencepublished"]
    assert published["specversion"] == "1.0"
    assert published["resource"] == f"urn:altinn:resource:{sender.resource_id}"
    assert published["resourceinstance"] == cid
    assert str(published["source"]).endswith("/correspondence/api/v1/correspondence")
    assert published["subject"] == PERSON_URN + person  # the recipient, for published
    assert published["alternativesubject"] == f"/person/{person}"
    initialized = events["correspondenceinitialized"]
    assert initialized["subject"] == ORG_URN + sender.org
    assert initialized["alternativesubject"] == f"/organisation/{sender.org}"
    assert initialized["id"] != published["id"]


async def test_recipient_actions_reach_sender_and_recipient_but_recipient_sees_only_its_part(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    person = builders.national_id()
    person_token = dev_issuer.mint(scope=READ, pid=person)
    owner_hook, person_hook = Receiver(), Receiver()
    owner_hook.start()
    person_hook.start()
    try:
        await subscribe(client, sender.token, owner_hook.url)
        await subscribe(client, person_token, person_hook.url)
        [cid] = await send(
            client, sender, [person], isConfirmationNeeded=True, dueDateTime=builders.future(5)
        )
        await drain(services)
        url = f"{INITIALIZE}/{cid}"
        assert (await client.get(url, headers=bearer(person_token))).status_code == 200
        for action in ("markasread", "confirm"):
            response = await client.post(f"{url}/{action}", headers=bearer(person_token))
            assert response.status_code == 200, response.text
        response = await client.delete(f"{url}/purge", headers=bearer(person_token))
        assert response.status_code == 200, response.text
        await drain(services)
        # Deliveries run concurrently, so arrival order is not promised; `time` orders them.
        assert sorted(person_hook.types()) == [
            "correspondencepublished",
            "correspondencepurged",
            "correspondencereceiverconfirmed",
            "correspondencereceiverread",
        ]
        assert sorted(owner_hook.types()) == sorted(
            [
                "correspondenceinitialized",
                "correspondencepublished",
                "correspondencereceiverread",
                "correspondencereceiverconfirmed",
                "correspondencepurged",
            ]
        )
    finally:
        owner_hook.stop()
        person_hook.stop()


async def test_due_date_sends_never_read_and_never_confirmed_about_the_recipient(
    client: httpx.AsyncClient, sender: Sender, services: Services, receiver: Receiver
) -> None:
    await subscribe(client, sender.token, receiver.url)
    person = builders.national_id()
    [cid] = await send(client, sender, [person], isConfirmationNeeded=True, dueDateTime=builders.future(2))
    await drain(services)
    clock.shift(timedelta(days=2, seconds=5))
    await drain(services)
    late = [e for e in receiver.events() if "never" in str(e["type"])]
    assert sorted(str(e["type"]) for e in late) == [
        "no.altinn.correspondence.correspondencereceiverneverconfirmed",
        "no.altinn.correspondence.correspondencereceiverneverread",
    ]
    assert all(e["subject"] == PERSON_URN + person and e["resourceinstance"] == cid for e in late)


async def test_reserved_recipient_and_failed_publish_events(
    client: httpx.AsyncClient, sender: Sender, services: Services, receiver: Receiver, db: asyncpg.Connection
) -> None:
    await subscribe(client, sender.token, receiver.url)
    reserved, later_reserved, free = builders.national_id(), builders.national_id(), builders.national_id()
    await db.execute("INSERT INTO contacts (party, reserved) VALUES ($1, true)", PERSON_URN + reserved)
    [reserved_id, late_id, _] = await send(
        client, sender, [reserved, later_reserved, free], requestedPublishTime=builders.future(1)
    )
    await db.execute("INSERT INTO contacts (party, reserved) VALUES ($1, true)", PERSON_URN + later_reserved)
    clock.shift(timedelta(days=1, seconds=5))
    await drain(services)
    types = receiver.types()
    assert types.count("correspondencereceiverreserved") == 1
    assert types.count("correspondenceinitialized") == 2  # not for the reserved one
    failed = [e for e in receiver.events() if str(e["type"]).endswith("publishfailed")]
    # The reference still tries to publish a Reserved one, and fails it (behaviour.md §4.5).
    assert sorted(str(e["resourceinstance"]) for e in failed) == sorted([reserved_id, late_id])
    assert types.count("correspondencepublished") == 1


async def test_subscriber_that_was_down_gets_each_event_once_after_retries(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    hook = Receiver()  # not started: connections are refused
    sub = await subscribe(client, sender.token, hook.url)
    await send(client, sender, [builders.national_id() for _ in range(3)])
    await drain(services)
    log = (await client.get(f"{SUBSCRIPTIONS}/{sub['id']}/deliveries", headers=sender.headers)).json()
    assert len(log["deliveries"]) == 6
    assert all(d["status"] == "Pending" and d["attempts"] == 1 and d["lastError"] for d in log["deliveries"])

    hook.answer = 503  # back, but failing
    hook.start()
    try:
        clock.shift(timedelta(minutes=5))
        await drain(services)
        assert len(hook.received) == 6
        log = (await client.get(f"{SUBSCRIPTIONS}/{sub['id']}/deliveries", headers=sender.headers)).json()
        assert {d["lastStatusCode"] for d in log["deliveries"]} == {503}
        assert {d["attempts"] for d in log["deliveries"]} == {2}

        hook.answer = 200
        hook.received.clear()
        clock.shift(timedelta(hours=1))
        await drain(services)
        clock.shift(timedelta(days=1))
        await drain(services)  # nothing is sent again
        ids = [r.headers["webhook-id"] for r in hook.received]
        assert len(ids) == 6 and len(set(ids)) == 6
        assert all(verified(r, sub["secret"]) for r in hook.received)
        log = (await client.get(f"{SUBSCRIPTIONS}/{sub['id']}/deliveries", headers=sender.headers)).json()
        assert {d["status"] for d in log["deliveries"]} == {"Delivered"}
        assert {d["attempts"] for d in log["deliveries"]} == {3}
    finally:
        hook.stop()


async def test_delivery_fails_after_the_last_attempt(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    hook = Receiver()  # never started
    sub = await subscribe(client, sender.token, hook.url, typeFilter="correspondenceinitialized")
    await send(client, sender, [builders.national_id()])
    await drain(services)
    policy = DeliveryPolicy(max_attempts=2, backoff_seconds=1)
    clock.shift(timedelta(hours=2))
    while await deliver_due(services.pool, services.webhook_sender(), policy):
        clock.shift(timedelta(hours=2))
    log = (await client.get(f"{SUBSCRIPTIONS}/{sub['id']}/deliveries", headers=sender.headers)).json()
    [delivery] = log["deliveries"]
    assert delivery["status"] == "Failed" and delivery["attempts"] == 2 and delivery["nextAttempt"] is None


async def test_filters_by_type_and_resource(
    client: httpx.AsyncClient, sender: Sender, services: Services, receiver: Receiver
) -> None:
    other = Receiver()
    other.start()
    try:
        await subscribe(
            client,
            sender.token,
            receiver.url,
            typeFilter="no.altinn.correspondence.correspondencepublished",
            resourceFilter=sender.resource_id,
        )
        await subscribe(client, sender.token, other.url, resourceFilter="urn:altinn:resource:someone-else")
        await send(client, sender, [builders.national_id()])
        await drain(services)
        assert receiver.types() == ["correspondencepublished"]
        assert other.received == []
    finally:
        other.stop()


async def test_attachment_events(
    client: httpx.AsyncClient, sender: Sender, services: Services, receiver: Receiver
) -> None:
    await subscribe(client, sender.token, receiver.url)
    attachment_id = await published_attachment(client, sender, services)
    await drain(services)
    events = [e for e in receiver.events() if e["resourceinstance"] == attachment_id]
    times = {str(e["type"]).rsplit(".", 1)[1]: str(e["time"]) for e in events}
    assert {"attachmentinitialized", "attachmentpublished"} <= set(times)
    assert times["attachmentinitialized"] <= times["attachmentpublished"]
    assert all(str(e["source"]).endswith("/correspondence/api/v1/attachment") for e in events)
    assert all(e["subject"] == ORG_URN + sender.org for e in events)


async def test_subscriptions_belong_to_their_party(
    client: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer, receiver: Receiver
) -> None:
    sub = await subscribe(client, sender.token, receiver.url)
    listed = (await client.get(SUBSCRIPTIONS, headers=sender.headers)).json()
    assert [s["id"] for s in listed["subscriptions"]] == [sub["id"]]
    assert "secret" not in listed["subscriptions"][0] or listed["subscriptions"][0]["secret"] is None

    stranger = dev_issuer.mint(scope=READ, pid=builders.national_id())
    assert (await client.get(SUBSCRIPTIONS, headers=bearer(stranger))).json()["subscriptions"] == []
    for method in ("GET", "DELETE"):
        response = await client.request(method, f"{SUBSCRIPTIONS}/{sub['id']}", headers=bearer(stranger))
        assert response.status_code == 403, response.text
    response = await client.get(f"{SUBSCRIPTIONS}/{sub['id']}/deliveries", headers=bearer(stranger))
    assert response.status_code == 403
    assert (await client.get(f"{SUBSCRIPTIONS}/999999999", headers=sender.headers)).status_code == 404
    assert (await client.get(SUBSCRIPTIONS)).status_code == 401
    no_scope = dev_issuer.mint(scope="altinn:something.else", org=sender.org)
    assert (await client.get(SUBSCRIPTIONS, headers=bearer(no_scope))).status_code == 403

    assert (await client.delete(f"{SUBSCRIPTIONS}/{sub['id']}", headers=sender.headers)).status_code == 200
    assert (await client.get(f"{SUBSCRIPTIONS}/{sub['id']}", headers=sender.headers)).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"endPoint": "ftp://127.0.0.1/hook"},
        {"endPoint": "not a url"},
        {"endPoint": "http://user:pw@127.0.0.1/hook"},
        {"endPoint": "http://127.0.0.1/hook", "typeFilter": "no.altinn.correspondence.nosuchevent"},
        {"endPoint": "http://127.0.0.1/hook", "subjectFilter": "someone"},
        {},
    ],
)
async def test_bad_subscriptions_are_refused(
    client: httpx.AsyncClient, sender: Sender, body: dict[str, str]
) -> None:
    response = await client.post(SUBSCRIPTIONS, json=body, headers=sender.headers)
    assert response.status_code == 400, response.text


async def test_deleting_a_subscription_cancels_its_pending_deliveries(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    hook = Receiver()  # down
    sub = await subscribe(client, sender.token, hook.url)
    await send(client, sender, [builders.national_id()])
    await drain(services)
    assert (await client.delete(f"{SUBSCRIPTIONS}/{sub['id']}", headers=sender.headers)).status_code == 200
    hook.start()
    try:
        clock.shift(timedelta(hours=1))
        await drain(services)
        assert hook.received == []
    finally:
        hook.stop()


async def test_metrics_count_events_and_deliveries(
    client: httpx.AsyncClient, sender: Sender, services: Services, receiver: Receiver
) -> None:
    await subscribe(client, sender.token, receiver.url)
    await send(client, sender, [builders.national_id()])
    await drain(services)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in response.text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['correspondence_event_deliveries{state="delivered"}'] >= 2
    assert samples["correspondence_events"] >= 2
    assert samples["correspondence_event_subscriptions"] >= 1
    assert "correspondence_notifications_sent" in samples
    assert uuid.UUID(str(receiver.events()[0]["id"]))


@pytest.mark.parametrize(
    ("end_point", "accepted"),
    [
        ("https://hooks.example.org/correspondence", True),
        ("http://hooks.example.org/correspondence", False),
        ("https://127.0.0.1/hook", False),
        ("https://localhost:8443/hook", False),
        ("https://10.1.2.3/hook", False),
        ("https://169.254.169.254/latest/meta-data", False),
        ("https://[::1]/hook", False),
        ("https://[fd00::1]/hook", False),
        ("https://240.0.0.1/hook", False),
        ("https://100.64.0.1/hook", False),
        ("https://93.184.216.34/hook", True),
        ("https://1.1/hook", True),  # 1.0.0.1: a public address in a short form is still public
        ("https://hooks.example.org./hook", True),
    ],
)
async def test_production_accepts_only_public_https_endpoints(
    services: Services, sender: Sender, end_point: str, accepted: bool
) -> None:
    caller = Caller(
        issuer="test", kind="altinn", scopes=frozenset({"altinn:correspondence.write"}),
        org=sender.org, pid=None, expires=0.0,
    )  # fmt: skip
    request = SubscriptionRequestModel.model_validate({"endPoint": end_point})
    try:
        await subscribe_use_case.subscribe(services.pool, caller=caller, request=request, production=True)
        outcome = True
    except PlainError as exc:
        assert exc.status == 400
        outcome = False
    assert outcome is accepted
