"""The notification condition endpoints (api.md §4.2): a notification service asks, just before it
sends, whether the main notification or the reminder of a correspondence should still go out. Our
own worker decides with the same rule (notification/condition.py); the tests below put a
correspondence in each state and check that the endpoints and the worker give the same answer."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import time
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from correspondence.auth.tokens import DevIssuer
from correspondence.correspondence.schemas import STATUS_NAMES
from correspondence.correspondence.use_cases.publish import publish_correspondences
from correspondence.kit import clock
from correspondence.notification import statuses as st
from correspondence.notification.use_cases.deliver import SmsWindow
from correspondence.notification.use_cases.process import process_orders
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders
from tests.conftest import INITIALIZE, Sender

SCOPE = "altinn:system/notifications.condition.check"
READ = "altinn:correspondence.read"
PERSON = "urn:altinn:person:identifier-no:"
ANY_HOUR = SmsWindow(time(0, 0), time(0, 0), ZoneInfo("Europe/Oslo"))


def check_url(cid: str, *, main: bool) -> str:
    return f"{INITIALIZE}/{cid}/notification/check" + ("/main" if main else "")


@pytest.fixture
def checker(dev_issuer: DevIssuer) -> dict[str, str]:
    """The notification service: its own organisation, with the condition-check scope only."""
    return {"Authorization": f"Bearer {dev_issuer.mint(scope=SCOPE, org=builders.org_number())}"}


async def ask(client: httpx.AsyncClient, checker: dict[str, str], cid: str) -> tuple[bool, bool]:
    """(main, reminder) as the endpoints answer."""
    answers = []
    for main in (True, False):
        response = await client.get(check_url(cid, main=main), headers=checker)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert set(body) == {"sendNotification"} and isinstance(body["sendNotification"], bool)
        answers.append(body["sendNotification"])
    return answers[0], answers[1]


# --- who may ask, and what an odd question gets ----------------------------------------------------


async def test_the_check_needs_a_token_with_the_condition_check_scope(
    client: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer, checker: dict[str, str]
) -> None:
    cid = str(uuid.uuid4())
    for main in (True, False):
        url = check_url(cid, main=main)
        assert (await client.get(url)).status_code == 401
        as_sender = await client.get(url, headers=sender.headers)
        assert as_sender.status_code == 403, as_sender.text
        assert as_sender.headers["content-type"].startswith("application/problem+json")
        assert SCOPE in as_sender.json()["detail"]
        reader = dev_issuer.mint(scope=READ, pid=builders.national_id())
        assert (await client.get(url, headers={"Authorization": f"Bearer {reader}"})).status_code == 403
        allowed = await client.get(url, headers=checker)
        assert allowed.status_code == 200, allowed.text


async def test_an_unknown_correspondence_is_not_notified_about(
    client: httpx.AsyncClient, checker: dict[str, str]
) -> None:
    assert await ask(client, checker, str(uuid.uuid4())) == (False, False)


async def test_a_malformed_id_is_a_400_validation_problem(
    client: httpx.AsyncClient, checker: dict[str, str]
) -> None:
    for main in (True, False):
        response = await client.get(check_url("not-a-guid", main=main), headers=checker)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "STD-00000"


# --- the endpoints and the worker agree -------------------------------------------------------------


Step = Callable[["Case"], Awaitable[None]]


class Case:
    def __init__(
        self, client: httpx.AsyncClient, sender: Sender, services: Services, db: asyncpg.Connection, pid: str
    ) -> None:
        self.client, self.sender, self.services, self.db, self.pid = client, sender, services, db, pid
        self.cid = ""
        self.recipient: dict[str, str] = {}

    async def publish(self) -> None:
        async with self.services.pool.acquire() as conn, conn.transaction():
            await publish_correspondences(conn, [uuid.UUID(self.cid)])

    async def as_recipient(self, method: str, suffix: str = "") -> None:
        url = f"{INITIALIZE}/{self.cid}{suffix}"
        response = await self.client.request(method, url, headers=self.recipient)
        assert response.status_code == 200, (suffix, response.text)


async def _nothing(case: Case) -> None:
    return None


async def _published(case: Case) -> None:
    await case.publish()


async def _fetched(case: Case) -> None:
    await case.publish()
    await case.as_recipient("GET")


async def _read(case: Case) -> None:
    await _fetched(case)
    await case.as_recipient("GET", "/content")


async def _confirmed(case: Case) -> None:
    await _fetched(case)  # fetched and confirmed, never opened: confirming is not reading
    await case.as_recipient("POST", "/confirm")


async def _archived(case: Case) -> None:
    await _fetched(case)
    await case.as_recipient("POST", "/archive")


async def _purged_by_recipient(case: Case) -> None:
    await _read(case)
    await case.as_recipient("DELETE", "/purge")


async def _purged_by_sender(case: Case) -> None:
    url = f"{INITIALIZE}/{case.cid}/purge"
    response = await case.client.delete(url, headers=case.sender.headers)
    assert response.status_code == 200, response.text
    await case.publish()  # the publish job that was queued finds it purged


async def _failed(case: Case) -> None:
    # Reserved (KRR) after Initialize: publishing fails it.
    await registry.set_contact(case.db, party=PERSON + case.pid, email=None, mobile=None, reserved=True)
    await case.publish()


# (main, reminder) expected, as api.md §4.2 says.
CASES: dict[str, tuple[Step, tuple[bool, bool], str]] = {
    "unpublished": (_nothing, (False, False), "ReadyForPublish"),
    "published": (_published, (True, True), "Published"),
    "fetched": (_fetched, (True, True), "Published"),
    "read": (_read, (True, False), "Read"),
    "confirmed": (_confirmed, (True, True), "Confirmed"),
    "archived": (_archived, (True, True), "Archived"),
    "purged_by_recipient": (_purged_by_recipient, (False, False), "PurgedByRecipient"),
    "purged_by_sender_before_publication": (_purged_by_sender, (False, False), "PurgedByAltinn"),
    "failed": (_failed, (False, False), "Failed"),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_the_endpoints_and_the_worker_decide_alike(
    name: str,
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    db: asyncpg.Connection,
    dev_issuer: DevIssuer,
    checker: dict[str, str],
) -> None:
    step, expected, status = CASES[name]
    pid = builders.national_id()
    body = builders.initialize_body(sender.resource_id, [pid], notification_block=builders.notification())
    created = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert created.status_code == 200, created.text
    [item] = created.json()["correspondences"]
    case = Case(client, sender, services, db, pid)
    case.cid = item["correspondenceId"]
    case.recipient = {"Authorization": f"Bearer {dev_issuer.mint(scope=READ, pid=pid)}"}
    await step(case)
    current = await db.fetchval("SELECT status FROM correspondences WHERE id = $1::uuid", case.cid)
    assert STATUS_NAMES[current] == status

    endpoints = await ask(client, checker, case.cid)

    # The worker's own step (jobs.py runs exactly this for an order at its send time).
    orders = {n["isReminder"]: uuid.UUID(n["orderId"]) for n in item["notifications"]}
    async with services.pool.acquire() as conn, conn.transaction():
        await process_orders(conn, [orders[False], orders[True]], now=clock.now(), window=ANY_HOUR)
    rows = await db.fetch(
        "SELECT is_reminder, processing_status FROM notification_orders WHERE correspondence_id = $1::uuid",
        case.cid,
    )
    assert all(r["processing_status"] != st.REGISTERED for r in rows)
    decided = {r["is_reminder"]: r["processing_status"] != st.CONDITION_NOT_MET for r in rows}
    worker = (decided[False], decided[True])

    assert endpoints == worker == expected, f"{name}: endpoints {endpoints}, worker {worker}"
