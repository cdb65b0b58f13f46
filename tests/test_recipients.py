"""The recipients' side: retrieval, actions, search and access for persons, organisations and
persons acting for an organisation (issue: recipients' side)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.app import build_worker
from correspondence.auth.tokens import DevIssuer
from correspondence.kit import clock
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders
from tests.conftest import INITIALIZE, Sender

READ = "altinn:correspondence.read"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def drain(services: Services) -> None:
    worker = build_worker(services)
    while await worker.run_once():
        pass


async def send(client: httpx.AsyncClient, sender: Sender, recipients: list[str], **kw: Any) -> list[str]:
    body = builders.initialize_body(sender.resource_id, recipients, **kw)
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    return [i["correspondenceId"] for i in response.json()["correspondences"]]


class People:
    """A person, an organisation, a person acting for it, and a stranger — with their tokens."""

    def __init__(self, issuer: DevIssuer) -> None:
        self.person = builders.national_id()
        self.org = builders.org_number()
        self.employee = builders.national_id()
        self.stranger = builders.national_id()
        self.person_token = issuer.mint(scope=READ, pid=self.person)
        self.org_token = issuer.mint(scope=READ, org=self.org)
        self.employee_token = issuer.mint(scope=READ, pid=self.employee)
        self.stranger_token = issuer.mint(scope=READ, pid=self.stranger)
        self.stranger_org_token = issuer.mint(scope=READ, org=builders.org_number())


@pytest.fixture
async def people(dev_issuer: DevIssuer, db: asyncpg.Connection) -> People:
    p = People(dev_issuer)
    await registry.grant_access(
        db,
        person=f"urn:altinn:person:identifier-no:{p.employee}",
        party=f"urn:altinn:organization:identifier-no:{p.org}",
    )
    return p


async def overview(client: httpx.AsyncClient, cid: str, token: str) -> httpx.Response:
    return await client.get(f"{INITIALIZE}/{cid}", headers=bearer(token))


# --- retrieval ------------------------------------------------------------------------------------


async def test_recipient_sees_nothing_before_publication(
    client: httpx.AsyncClient, sender: Sender, people: People
) -> None:
    [cid] = await send(client, sender, [people.person])
    response = await overview(client, cid, people.person_token)
    assert response.status_code == 404 and response.json()["errorCode"] == 1001


async def test_person_reads_their_correspondence_and_fetched_is_recorded(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    [cid] = await send(client, sender, [people.person])
    await drain(services)
    response = await overview(client, cid, people.person_token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["content"]["messageTitle"] == "Meldingstittel"
    assert body["status"] == "Published"
    details = (await client.get(f"{INITIALIZE}/{cid}/details", headers=bearer(people.person_token))).json()
    statuses = [s["status"] for s in details["statusHistory"]]
    assert statuses.count("Fetched") == 2  # overview (debounced) + details (every call)
    assert details["status"] == "Published"  # Fetched never becomes the current status


async def test_overview_fetch_is_debounced(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services, db: asyncpg.Connection
) -> None:
    [cid] = await send(client, sender, [people.person])
    await drain(services)
    for _ in range(3):
        assert (await overview(client, cid, people.person_token)).status_code == 200
    count = await db.fetchval(
        "SELECT count(*) FROM correspondence_fetches WHERE correspondence_id = $1::uuid", cid
    )
    assert count == 1
    clock.shift(timedelta(seconds=16))
    await overview(client, cid, people.person_token)
    count = await db.fetchval(
        "SELECT count(*) FROM correspondence_fetches WHERE correspondence_id = $1::uuid", cid
    )
    assert count == 2


async def test_fetched_rows_are_in_the_history_in_order_but_no_status_search_finds_them(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    # Fetched rows have a table of their own (as the reference keeps them): the history still lists
    # them in time order, a first read records Fetched before Read, and they count as "fetched"
    # for markasread, but searching by status=Fetched matches nothing, as in the reference.
    [cid] = await send(client, sender, [people.person])
    await drain(services)
    headers = bearer(people.person_token)
    assert (await overview(client, cid, people.person_token)).status_code == 200
    clock.shift(timedelta(seconds=16))
    assert (await client.get(f"{INITIALIZE}/{cid}/content", headers=headers)).status_code == 200
    clock.shift(timedelta(seconds=1))
    details = (await client.get(f"{INITIALIZE}/{cid}/details", headers=headers)).json()
    history = [s["status"] for s in details["statusHistory"]]
    assert history == ["Initialized", "ReadyForPublish", "Published", "Fetched", "Fetched", "Read", "Fetched"]
    changed = [s["statusChanged"] for s in details["statusHistory"]]
    assert changed == sorted(changed) and changed[4] == changed[5]
    assert details["status"] == "Read"
    for role, token_headers in (("Sender", sender.headers), ("Recipient", headers)):
        found = {}
        for status in ("Fetched", "Read"):
            response = await client.get(
                INITIALIZE,
                params={"resourceId": sender.resource_id, "role": role, "status": status},
                headers=token_headers,
            )
            assert response.status_code == 200, response.text
            found[status] = response.json()["ids"]
        assert found == {"Fetched": [], "Read": [cid]}, role


async def test_organisation_and_delegated_person_read_the_organisations_correspondence(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    [cid] = await send(client, sender, [f"0192:{people.org}"])
    await drain(services)
    assert (await overview(client, cid, people.org_token)).status_code == 200
    assert (await overview(client, cid, people.employee_token)).status_code == 200
    assert (await overview(client, cid, people.stranger_token)).status_code == 403


async def test_content_is_the_markdown_body_and_marks_it_read(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    [cid] = await send(client, sender, [people.person], content={"messageBody": "Hei **du**"})
    await drain(services)
    response = await client.get(f"{INITIALIZE}/{cid}/content", headers=bearer(people.person_token))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Hei **du**"
    assert (await overview(client, cid, people.person_token)).json()["status"] == "Read"
    refused = await client.get(
        f"{INITIALIZE}/{cid}/content", headers={**bearer(people.person_token), "Accept": "application/json"}
    )
    assert refused.status_code == 406


async def test_more_than_three_reply_options_are_appended_to_the_body(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    options = [{"linkURL": f"https://example.no/{i}", "linkText": f"Valg {i}"} for i in range(4)]
    [cid] = await send(client, sender, [people.person], replyOptions=options)
    await drain(services)
    body = (await overview(client, cid, people.person_token)).json()["content"]["messageBody"]
    assert body.endswith(
        "Svarvalg:\nValg 0: https://example.no/0\nValg 1: https://example.no/1\n"
        "Valg 2: https://example.no/2\nValg 3: https://example.no/3"
    )


# --- actions --------------------------------------------------------------------------------------


async def test_mark_as_read_needs_a_fetch_first_and_only_once(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    [cid] = await send(client, sender, [people.person])
    await drain(services)
    url = f"{INITIALIZE}/{cid}/markasread"
    first = await client.post(url, headers=bearer(people.person_token))
    assert first.status_code == 400 and first.json()["errorCode"] == 1024
    await overview(client, cid, people.person_token)
    ok = await client.post(url, headers=bearer(people.person_token))
    assert ok.status_code == 200 and ok.json() == cid
    assert (await overview(client, cid, people.person_token)).json()["status"] == "Read"
    again = await client.post(url, headers=bearer(people.person_token))
    assert again.status_code == 400 and again.json()["errorCode"] == 1040


async def test_confirm_is_stored_before_the_answer(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    [cid] = await send(
        client, sender, [people.person], isConfirmationNeeded=True, dueDateTime=builders.future(10)
    )
    await drain(services)
    url = f"{INITIALIZE}/{cid}/confirm"
    early = await client.post(url, headers=bearer(people.person_token))
    assert early.status_code == 400 and early.json()["errorCode"] == 1025
    await overview(client, cid, people.person_token)
    ok = await client.post(url, headers=bearer(people.person_token))
    assert ok.status_code == 200 and ok.json() == cid
    assert (await overview(client, cid, people.person_token)).json()["status"] == "Confirmed"
    again = await client.post(url, headers=bearer(people.person_token))
    assert again.status_code == 400 and again.json()["errorCode"] == 1041


async def test_recipient_purge_needs_confirmation_when_required(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    [cid] = await send(
        client, sender, [people.person], isConfirmationNeeded=True, dueDateTime=builders.future(10)
    )
    await drain(services)
    url = f"{INITIALIZE}/{cid}/purge"
    refused = await client.delete(url, headers=bearer(people.person_token))
    assert refused.status_code == 400 and refused.json()["errorCode"] == 1026
    await overview(client, cid, people.person_token)
    await client.post(f"{INITIALIZE}/{cid}/confirm", headers=bearer(people.person_token))
    ok = await client.delete(url, headers=bearer(people.person_token))
    assert ok.status_code == 200 and ok.json() == cid
    assert (await overview(client, cid, people.person_token)).status_code == 404
    again = await client.delete(url, headers=bearer(people.person_token))
    assert again.status_code == 400 and again.json()["errorCode"] == 1014
    details = (await client.get(f"{INITIALIZE}/{cid}/details", headers=sender.headers)).json()
    assert "PurgedByRecipient" not in [
        s["status"] for s in details["statusHistory"]
    ]  # hidden from the sender


async def test_sender_purges_only_before_publication(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    early, late = await send(
        client, sender, [people.person, builders.national_id()], requestedPublishTime=builders.future(1)
    )
    ok = await client.delete(f"{INITIALIZE}/{early}/purge", headers=sender.headers)
    assert ok.status_code == 200
    clock.shift(timedelta(days=1, seconds=1))
    await drain(services)
    refused = await client.delete(f"{INITIALIZE}/{late}/purge", headers=sender.headers)
    assert refused.status_code == 400 and refused.json()["errorCode"] == 1013
    details = (await client.get(f"{INITIALIZE}/{early}/details", headers=sender.headers)).json()
    assert details["status"] == "PurgedByAltinn"  # purge is terminal: the publish job did not undo it


async def test_archive_files_it_away_and_keeps_it_searchable(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    [cid] = await send(client, sender, [people.person])
    await drain(services)
    ok = await client.post(f"{INITIALIZE}/{cid}/archive", headers=bearer(people.person_token))
    assert ok.status_code == 200 and ok.json() == cid
    assert (
        await client.post(f"{INITIALIZE}/{cid}/archive", headers=bearer(people.person_token))
    ).status_code == 200
    assert (await overview(client, cid, people.person_token)).json()["status"] == "Archived"
    found = await client.get(
        INITIALIZE,
        params={"resourceId": sender.resource_id, "role": "Recipient", "status": "Archived"},
        headers=bearer(people.person_token),
    )
    assert found.json()["ids"] == [cid]


async def test_archive_needs_confirmation_when_required(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    [cid] = await send(
        client, sender, [people.person], isConfirmationNeeded=True, dueDateTime=builders.future(10)
    )
    await drain(services)
    response = await client.post(f"{INITIALIZE}/{cid}/archive", headers=bearer(people.person_token))
    assert response.status_code == 400 and response.json()["errorCode"] == 1026


async def test_recipient_actions_need_the_read_scope(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    [cid] = await send(client, sender, [people.person])
    await drain(services)
    for action in ("markasread", "confirm", "archive"):
        response = await client.post(f"{INITIALIZE}/{cid}/{action}", headers=sender.headers)
        assert response.status_code == 403


# --- nobody sees another party's correspondence ------------------------------------------------------


async def test_every_endpoint_refuses_a_foreign_id(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    [cid] = await send(client, sender, [people.person], content={"messageTitle": "Hemmelig tittel"})
    await drain(services)
    calls = [
        ("GET", f"{INITIALIZE}/{cid}"),
        ("GET", f"{INITIALIZE}/{cid}/details"),
        ("GET", f"{INITIALIZE}/{cid}/content"),
        ("POST", f"{INITIALIZE}/{cid}/markasread"),
        ("POST", f"{INITIALIZE}/{cid}/confirm"),
        ("POST", f"{INITIALIZE}/{cid}/archive"),
        ("DELETE", f"{INITIALIZE}/{cid}/purge"),
    ]
    for token in (people.stranger_token, people.stranger_org_token, people.employee_token):
        for method, url in calls:
            response = await client.request(method, url, headers=bearer(token))
            assert response.status_code == 403, (method, url, response.text)
            assert "Hemmelig" not in response.text
    other_sender = sender.token  # the sender owns it; a different service owner does not
    assert other_sender
    stranger_search = await client.get(
        INITIALIZE,
        params={"resourceId": sender.resource_id, "role": "Recipient", "onBehalfOf": people.person},
        headers=bearer(people.stranger_token),
    )
    assert stranger_search.status_code == 403


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient, people: People) -> None:
    missing = await overview(client, str(uuid.uuid4()), people.person_token)
    assert missing.status_code == 404 and missing.json()["errorCode"] == 1001
    malformed = await client.get(f"{INITIALIZE}/not-a-guid", headers=bearer(people.person_token))
    assert malformed.status_code == 400


async def test_other_service_owner_cannot_act_as_sender(
    client: httpx.AsyncClient, sender: Sender, people: People, dev_issuer: DevIssuer
) -> None:
    [cid] = await send(client, sender, [people.person])
    other = dev_issuer.mint(scope="altinn:correspondence.write", org=builders.org_number())
    assert (await client.delete(f"{INITIALIZE}/{cid}/purge", headers=bearer(other))).status_code == 403


# --- search -----------------------------------------------------------------------------------------


async def test_search_pages_newest_first_with_totals(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    base = datetime.now(UTC) - timedelta(days=30)
    ids = []
    for i in range(7):
        ids += await send(
            client, sender, [people.person], requestedPublishTime=(base + timedelta(days=i)).isoformat()
        )
    hidden = await send(client, sender, [people.person], requestedPublishTime=builders.future(5))
    await drain(services)
    newest_first = list(reversed(ids))
    seen: list[str] = []
    for offset in (0, 3, 6):
        page = await client.get(
            INITIALIZE,
            params={"resourceId": sender.resource_id, "role": "Recipient", "offset": offset, "limit": 3},
            headers=bearer(people.person_token),
        )
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["pagination"] == {"totalItems": 7, "page": offset // 3 + 1, "pages": 3}
        seen += body["ids"]
    assert seen == newest_first
    assert hidden[0] not in seen  # not yet published
    beyond = await client.get(
        INITIALIZE,
        params={"resourceId": sender.resource_id, "role": "Recipient", "offset": 50, "limit": 3},
        headers=bearer(people.person_token),
    )
    assert beyond.json()["ids"] == [] and beyond.json()["pagination"]["totalItems"] == 7


async def test_search_filters(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services, db: asyncpg.Connection
) -> None:
    t0 = datetime.now(UTC) - timedelta(days=10)
    old = await send(client, sender, [people.person], requestedPublishTime=t0.isoformat())
    new = await send(
        client, sender, [people.person], requestedPublishTime=(t0 + timedelta(days=5)).isoformat()
    )
    await drain(services)
    headers = bearer(people.person_token)
    window = await client.get(
        INITIALIZE,
        params={
            "resourceId": sender.resource_id,
            "role": "Recipient",
            "from": (t0 + timedelta(days=1)).isoformat(),
            "to": datetime.now(UTC).isoformat(),
        },
        headers=headers,
    )
    assert window.json()["ids"] == new
    by_resource = await client.get(
        INITIALIZE, params={"role": "Recipient", "resourceId": sender.resource_id}, headers=headers
    )
    assert set(by_resource.json()["ids"]) == {*old, *new}
    other = await client.get(
        INITIALIZE, params={"role": "Recipient", "resourceId": "another"}, headers=headers
    )
    assert other.json()["ids"] == []
    await overview(client, old[0], people.person_token)
    await client.post(f"{INITIALIZE}/{old[0]}/markasread", headers=headers)
    read = await client.get(
        INITIALIZE,
        params={"resourceId": sender.resource_id, "role": "Recipient", "status": "Read"},
        headers=headers,
    )
    assert read.json()["ids"] == old


async def test_search_as_sender_and_for_an_organisation(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services
) -> None:
    ids = await send(client, sender, [f"0192:{people.org}"], requestedPublishTime=builders.future(2))
    mine = await client.get(
        INITIALIZE, params={"role": "Sender", "resourceId": sender.resource_id}, headers=sender.headers
    )
    assert mine.json()["ids"] == ids  # senders see their own unpublished ones
    for token in (people.org_token, people.employee_token):
        found = await client.get(
            INITIALIZE,
            params={
                "resourceId": sender.resource_id,
                "role": "Recipient",
                "onBehalfOf": f"0192:{people.org}",
            },
            headers=bearer(token),
        )
        assert found.status_code == 200 and found.json()["ids"] == []  # not published yet
    clock.shift(timedelta(days=2, seconds=1))
    await drain(services)
    found = await client.get(
        INITIALIZE,
        params={"resourceId": sender.resource_id, "role": "Recipient", "onBehalfOf": f"0192:{people.org}"},
        headers=bearer(people.employee_token),
    )
    assert found.json()["ids"] == ids


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, 400, 1027),
        ({"offset": -1}, 400, 1028),
        ({"limit": -5}, 400, 1028),
    ],
)
async def test_search_errors(
    client: httpx.AsyncClient, people: People, params: dict[str, Any], status: int, code: int
) -> None:
    response = await client.get(
        INITIALIZE,
        params={"resourceId": "any", "role": "Recipient", **params},
        headers=bearer(people.person_token),
    )
    assert response.status_code == status and response.json()["errorCode"] == code


@pytest.mark.parametrize("value", ["910753614", "12345678901", "abc"])
async def test_search_rejects_malformed_on_behalf_of(
    client: httpx.AsyncClient, people: People, value: str
) -> None:
    response = await client.get(
        INITIALIZE,
        params={"resourceId": "any", "role": "Recipient", "onBehalfOf": value},
        headers=bearer(people.person_token),
    )
    assert response.status_code == 400 and response.json()["code"] == "STD-00000"


async def test_search_by_idempotent_key(client: httpx.AsyncClient, sender: Sender, people: People) -> None:
    key = str(uuid.uuid4())
    body = builders.initialize_body(sender.resource_id, [people.person], idempotent_key=key)
    cid = (await client.post(INITIALIZE, json=body, headers=sender.headers)).json()["correspondences"][0][
        "correspondenceId"
    ]
    found = await client.get(
        INITIALIZE,
        params={"resourceId": sender.resource_id, "role": "Sender", "idempotentKey": key},
        headers=sender.headers,
    )
    assert found.json()["ids"] == [cid]


# --- due dates -----------------------------------------------------------------------------------


async def test_due_date_records_never_read_and_never_confirmed(
    client: httpx.AsyncClient,
    sender: Sender,
    people: People,
    services: Services,
    db: asyncpg.Connection,
    dev_issuer: DevIssuer,
) -> None:
    diligent = builders.national_id()
    diligent_token = dev_issuer.mint(scope=READ, pid=diligent)
    unread, done = await send(
        client, sender, [people.person, diligent], isConfirmationNeeded=True, dueDateTime=builders.future(3)
    )
    await drain(services)
    await overview(client, unread, people.person_token)  # fetched, but never read nor confirmed
    await overview(client, done, diligent_token)
    await client.post(f"{INITIALIZE}/{done}/markasread", headers=bearer(diligent_token))
    await client.post(f"{INITIALIZE}/{done}/confirm", headers=bearer(diligent_token))
    query = "SELECT due_checked, never_read, never_confirmed FROM correspondences WHERE id = $1::uuid"
    assert (await db.fetchrow(query, unread))["due_checked"] is None
    clock.shift(timedelta(days=3, seconds=1))
    await drain(services)
    row = await db.fetchrow(query, unread)
    assert row["due_checked"] is not None and row["never_read"] is True and row["never_confirmed"] is True
    row = await db.fetchrow(query, done)
    assert row["due_checked"] is not None and row["never_read"] is False and row["never_confirmed"] is False
