"""Forwarding a correspondence to an e-mail address (api.md §3.11, §4.3; behaviour.md §8.4): the
rules and error codes, the e-mail with its attachments through a real SMTP server (and the outbox
directory without one), `Forwarded` in the history with its event, at most once, and the web form."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.adapters import open_email_sender
from correspondence.app import build_worker
from correspondence.auth.tokens import DevIssuer
from correspondence.kit import clock
from correspondence.kit.jobs import enqueue
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders
from tests.attachment_fixtures import drain, published_attachment
from tests.conftest import INITIALIZE, Sender
from tests.notification_servers import SmtpServer, body_text, start_smtp_server

READ = "altinn:correspondence.read"
TITLE = "Vedtak om tilskudd"
BODY = "Dette er **vedtaket** i saken din."
PDF = b"%PDF-1.7\n" + b"vedtak " * 3000

Mailer = Callable[..., Awaitable[Services]]


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    server = start_smtp_server(tmp_path_factory.mktemp("smtp") / "messages.jsonl")
    yield server
    server.stop()


@pytest.fixture
async def mailer(services: Services, smtp: SmtpServer) -> AsyncIterator[Mailer]:
    """Services sending e-mail to the real SMTP server, wired by the service's own function."""
    opened: list[Services] = []

    async def make(**overrides: Any) -> Services:
        settings = services.settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "smtp_tls": "none",
                "smtp_connections": 2,
                "notification_retry_seconds": 60.0,
                "notification_max_attempts": 3,
                **overrides,
            }
        )
        svc = dataclasses.replace(services, settings=settings, worker=None)
        svc.email = open_email_sender(settings)
        opened.append(svc)
        return svc

    yield make
    for svc in opened:
        await svc.close_messaging()


async def run_jobs(svc: Services) -> None:
    worker = build_worker(svc)
    while await worker.run_once():
        pass


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def address(kind: str = "saksbehandler") -> str:
    return f"{kind}-{uuid.uuid4().hex[:10]}@example.no"


def url(cid: str) -> str:
    return f"{INITIALIZE}/{cid}/forward"


def error_code(response: httpx.Response) -> int:
    code: int = response.json()["errorCode"]
    return code


async def forwardable(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    *,
    attachments: list[str] | None = None,
    read: bool = True,
    **correspondence: Any,
) -> tuple[str, dict[str, str]]:
    """A published correspondence that allows forwarding, read by its recipient organisation
    (unless `read` is false), and the recipient's headers."""
    org = builders.org_number()
    correspondence.setdefault("allowForwarding", True)
    body = builders.initialize_body(
        sender.resource_id,
        [f"0192:{org}"],
        content={"messageTitle": TITLE, "messageBody": BODY},
        **correspondence,
    )
    if attachments:
        body["existingAttachments"] = attachments
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    cid = str(response.json()["correspondences"][0]["correspondenceId"])
    await drain(services)  # publish
    headers = bearer(dev_issuer.mint(scope=READ, org=org))
    if read:
        assert (await client.get(f"{INITIALIZE}/{cid}/content", headers=headers)).status_code == 200
    return cid, headers


async def details(client: httpx.AsyncClient, headers: dict[str, str], cid: str) -> dict[str, Any]:
    response = await client.get(f"{INITIALIZE}/{cid}/details", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def attachments_of(message: EmailMessage) -> list[tuple[str | None, bytes]]:
    out = []
    for part in message.iter_attachments():
        assert isinstance(part, EmailMessage)
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out.append((part.get_filename(), payload))
    return out


async def events_for(db: asyncpg.Connection, cid: str) -> list[str]:
    rows = await db.fetch("SELECT type FROM event_outbox WHERE $1 = ANY(ids) ORDER BY id", uuid.UUID(cid))
    return [r["type"] for r in rows]


# --- the e-mail ---------------------------------------------------------------------------------------


async def test_a_forward_sends_one_email_with_the_text_the_message_and_its_attachment(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
    mailer: Mailer,
    smtp: SmtpServer,
) -> None:
    svc = await mailer()
    attachment_id = await published_attachment(
        client, sender, services, PDF, fileName="vedtak.pdf", displayName="Vedtak æøå.pdf"
    )
    cid, headers = await forwardable(client, sender, services, dev_issuer, attachments=[attachment_id])
    to = address()
    response = await client.post(
        url(cid), json={"forwardTo": to, "forwardingText": "Til orientering."}, headers=headers
    )
    assert response.status_code == 200, response.text
    forwarding_id = response.json()
    assert isinstance(forwarding_id, str) and uuid.UUID(forwarding_id)
    assert smtp.messages(to) == []  # the worker sends it, not the request
    await run_jobs(svc)

    [message] = smtp.messages(to)
    assert message["Subject"] == TITLE
    assert body_text(message) == f"Til orientering.\n\n---\n\n{BODY}"
    assert attachments_of(message) == [("Vedtak æøå.pdf", PDF)]
    history = (await details(client, headers, cid))["statusHistory"]
    forwarded = [h for h in history if h["status"] == "Forwarded"]
    assert [h["statusText"] for h in forwarded] == ["Forwarded"]
    assert (await details(client, headers, cid))["status"] == "Read"  # history only (DESIGN 3)
    assert (await events_for(db, cid)).count("correspondenceforwarded") == 1

    # The job once more (a re-run, a duplicate): nothing is sent again, nothing recorded again.
    await enqueue(db, "correspondence.forward", ref_id=uuid.UUID(forwarding_id))
    await run_jobs(svc)
    assert len(smtp.messages(to)) == 1
    history = (await details(client, headers, cid))["statusHistory"]
    assert [h["status"] for h in history].count("Forwarded") == 1
    assert (await events_for(db, cid)).count("correspondenceforwarded") == 1


async def test_without_smtp_the_email_is_written_to_the_outbox_directory(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    assert not services.settings.smtp_host  # the test app's default: the outbox directory
    attachment_id = await published_attachment(client, sender, services, PDF, fileName="vedtak.pdf")
    cid, headers = await forwardable(client, sender, services, dev_issuer, attachments=[attachment_id])
    to = address("outbox")
    response = await client.post(url(cid), json={"ForwardTo": to}, headers=headers)  # any case
    assert response.status_code == 200, response.text
    await drain(services)

    outbox = services.settings.data_dir / "outbox" / "email"
    found = []
    for path in outbox.glob("*.eml"):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if parsed["To"] == to:
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
    [message] = found
    assert body_text(message) == BODY  # no forwarding text: the body alone
    assert attachments_of(message) == [("vedtak.pdf", PDF)]
    history = (await details(client, headers, cid))["statusHistory"]
    assert "Forwarded" in [h["status"] for h in history]


async def test_attachments_over_the_limit_are_left_out_with_a_note(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    mailer: Mailer,
    smtp: SmtpServer,
) -> None:
    svc = await mailer(forward_attachments_max_bytes=len(PDF) + 5)
    small = await published_attachment(client, sender, services, b"liten fil", fileName="notat.txt")
    large = await published_attachment(client, sender, services, PDF, fileName="vedtak.pdf")
    cid, headers = await forwardable(client, sender, services, dev_issuer, attachments=[large, small])
    # With both the total is over the limit: the first fits, the second is named in the note.
    to = address()
    assert (await client.post(url(cid), json={"forwardTo": to}, headers=headers)).status_code == 200
    await run_jobs(svc)

    [message] = smtp.messages(to)
    assert attachments_of(message) == [("vedtak.pdf", PDF)]
    text = body_text(message)
    assert text.startswith(BODY + "\n\n---\n\n")
    assert "De finnes i mottakerens innboks:\n- notat.txt" in text
    assert f"{(len(PDF) + 5) / 1_000_000:g} MB" in text


async def test_a_transient_smtp_failure_is_retried_and_sent_once(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    mailer: Mailer,
    smtp: SmtpServer,
) -> None:
    svc = await mailer()
    cid, headers = await forwardable(client, sender, services, dev_issuer)
    to = address("flaky1")
    assert (await client.post(url(cid), json={"forwardTo": to}, headers=headers)).status_code == 200
    await run_jobs(svc)
    assert smtp.refusals(to) == 1 and smtp.messages(to) == []
    assert "Forwarded" not in [h["status"] for h in (await details(client, headers, cid))["statusHistory"]]
    clock.shift(timedelta(minutes=2))
    await run_jobs(svc)
    assert len(smtp.messages(to)) == 1
    assert "Forwarded" in [h["status"] for h in (await details(client, headers, cid))["statusHistory"]]


async def test_a_forward_left_mid_send_by_a_dead_worker_is_not_sent_again(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
    mailer: Mailer,
    smtp: SmtpServer,
) -> None:
    svc = await mailer()
    cid, headers = await forwardable(client, sender, services, dev_issuer)
    to = address()
    forwarding_id = (await client.post(url(cid), json={"forwardTo": to}, headers=headers)).json()
    # As a worker that claimed it and died before settling: claimed, the claim run out.
    await db.execute(
        """UPDATE correspondence_forwardings SET status = 'Email_Sending', attempts = 1,
             claimed_until = $2 WHERE id = $1""",
        uuid.UUID(forwarding_id),
        clock.now() - timedelta(seconds=1),
    )
    await run_jobs(svc)
    assert smtp.messages(to) == []
    row = await db.fetchrow(
        "SELECT status, last_error FROM correspondence_forwardings WHERE id = $1", uuid.UUID(forwarding_id)
    )
    assert row is not None and row["status"] == "Email_Failed" and "unknown" in row["last_error"]


# --- the rules ----------------------------------------------------------------------------------------


async def test_the_rules_answer_the_references_codes_in_its_order(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    cid, headers = await forwardable(client, sender, services, dev_issuer)
    to = address()

    async def post(body: dict[str, Any], target: str = cid, h: dict[str, str] = headers) -> httpx.Response:
        return await client.post(url(target), json=body, headers=h)

    unknown = await post({"forwardTo": to}, str(uuid.uuid4()))
    assert unknown.status_code == 404 and error_code(unknown) == 1001
    stranger = bearer(dev_issuer.mint(scope=READ, org=builders.org_number()))
    refused = await post({"forwardTo": to}, h=stranger)
    assert refused.status_code == 403 and error_code(refused) == 4001
    as_sender = await post({"forwardTo": to}, h=sender.headers)  # the Recipient policy: read scope
    assert as_sender.status_code == 403
    invalid = await post({"forwardTo": "not an address", "forwardingText": "x" * 500})
    assert invalid.status_code == 400 and error_code(invalid) == 3011  # before the text's rules
    assert invalid.json()["detail"] == "Invalid email provided for custom recipient."
    long_address = "a" * 990 + "@example.no"
    too_long = await post({"forwardTo": long_address})
    assert too_long.status_code == 400 and error_code(too_long) == 3027
    text_too_long = await post({"forwardTo": to, "forwardingText": "x" * 201})
    assert text_too_long.status_code == 400 and error_code(text_too_long) == 1066
    assert text_too_long.json()["detail"] == "Forwarding text cannot exceed 200 characters"
    html = await post({"forwardTo": to, "forwardingText": "Se <b>dette</b>"})
    assert html.status_code == 400 and error_code(html) == 1067
    ok = await post({"forwardTo": to, "forwardingText": "x" * 200})
    assert ok.status_code == 200, ok.text
    again = await post({"forwardTo": f"  {to.upper()} "[2:-1]})  # the same address, other case
    assert again.status_code == 400 and error_code(again) == 1064
    assert again.json()["detail"] == "Correspondence has already been forwarded to the specified recipient"
    assert (await post({"forwardTo": address()})).status_code == 200  # another address is fine


async def test_forwarding_needs_allow_forwarding_then_a_read(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    not_allowed, headers = await forwardable(client, sender, services, dev_issuer, allowForwarding=False)
    refused = await client.post(url(not_allowed), json={"forwardTo": address()}, headers=headers)
    assert refused.status_code == 400 and error_code(refused) == 1063
    assert refused.json()["detail"] == "Correspondence does not allow forwarding"

    unread, headers = await forwardable(client, sender, services, dev_issuer, read=False)
    assert (await client.get(f"{INITIALIZE}/{unread}", headers=headers)).status_code == 200  # fetched only
    refused = await client.post(url(unread), json={"forwardTo": address()}, headers=headers)
    assert refused.status_code == 400 and error_code(refused) == 1065
    assert refused.json()["detail"] == "Correspondence must be read before it can be forwarded"
    assert (await client.post(f"{INITIALIZE}/{unread}/markasread", headers=headers)).status_code == 200
    assert (await client.post(url(unread), json={"forwardTo": address()}, headers=headers)).status_code == 200


async def test_a_purged_correspondence_cannot_be_forwarded(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    cid, headers = await forwardable(client, sender, services, dev_issuer)
    assert (await client.delete(f"{INITIALIZE}/{cid}/purge", headers=headers)).status_code == 200
    refused = await client.post(url(cid), json={"forwardTo": address()}, headers=headers)
    assert refused.status_code == 404 and error_code(refused) == 1001


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ({}, "ForwardTo", "The ForwardTo field is required."),
        ({"forwardTo": None}, "ForwardTo", "The ForwardTo field is required."),
        ({"forwardTo": ""}, "ForwardTo", "The ForwardTo field is required."),
        ({"forwardTo": 5}, "ForwardTo", "The value '5' is not valid for ForwardTo."),
    ],
)
async def test_a_missing_address_is_a_validation_problem(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    body: dict[str, Any],
    key: str,
    message: str,
) -> None:
    cid, headers = await forwardable(client, sender, services, dev_issuer, read=False)
    response = await client.post(url(cid), json=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"] == {key: [message]}


async def test_a_person_with_a_delegation_may_forward_for_the_organisation(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
) -> None:
    org = builders.org_number()
    body = builders.initialize_body(sender.resource_id, [f"0192:{org}"], allowForwarding=True)
    cid = (await client.post(INITIALIZE, json=body, headers=sender.headers)).json()["correspondences"][0][
        "correspondenceId"
    ]
    await drain(services)
    person = builders.national_id()
    headers = bearer(dev_issuer.mint(scope=READ, pid=person))
    assert (await client.post(url(cid), json={"forwardTo": address()}, headers=headers)).status_code == 403
    await registry.grant_access(
        db,
        person=f"urn:altinn:person:identifier-no:{person}",
        party=f"urn:altinn:organization:identifier-no:{org}",
    )
    assert (await client.get(f"{INITIALIZE}/{cid}/content", headers=headers)).status_code == 200
    response = await client.post(url(cid), json={"forwardTo": address()}, headers=headers)
    assert response.status_code == 200, response.text


# --- forward check (hidden) ---------------------------------------------------------------------------


async def test_forward_check_answers_allow_forwarding_for_the_check_scope(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    allowed, _ = await forwardable(client, sender, services, dev_issuer, read=False)
    denied, _ = await forwardable(client, sender, services, dev_issuer, read=False, allowForwarding=False)
    checker = bearer(dev_issuer.mint(scope="altinn:correspondence.forward.check", org=builders.org_number()))
    yes = await client.get(f"{url(allowed)}/check", headers=checker)
    assert yes.status_code == 200 and yes.json() == {"allowForwarding": True}
    no = await client.get(f"{url(denied)}/check", headers=checker)
    assert no.json() == {"allowForwarding": False}
    missing = await client.get(f"{url(str(uuid.uuid4()))}/check", headers=checker)
    assert missing.status_code == 404 and error_code(missing) == 1001
    assert (await client.get(f"{url(allowed)}/check", headers=sender.headers)).status_code == 403
    document = (await client.get("/correspondence/api/v1/swagger/v1/swagger.json")).json()
    check = document["paths"]["/correspondence/api/v1/correspondence/{correspondenceId}/forward/check"]["get"]
    answer = check["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/CheckAllowForwardingExt"}  # hidden in the reference's
    operation = document["paths"]["/correspondence/api/v1/correspondence/{correspondenceId}/forward"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ForwardCorrespondenceRequestExt"}
    component = document["components"]["schemas"]["ForwardCorrespondenceRequestExt"]
    assert set(component["properties"]) == {"forwardTo", "forwardingText"}


# --- the web inbox ------------------------------------------------------------------------------------


async def test_the_web_inbox_forwards_with_the_same_rules(
    app: Any,
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    mailer: Mailer,
    smtp: SmtpServer,
) -> None:
    svc = await mailer()
    me = builders.national_id()
    body = builders.initialize_body(
        sender.resource_id, [me], allowForwarding=True, content={"messageTitle": TITLE, "messageBody": BODY}
    )
    cid = (await client.post(INITIALIZE, json=body, headers=sender.headers)).json()["correspondences"][0][
        "correspondenceId"
    ]
    plain = builders.initialize_body(sender.resource_id, [me])
    other = (await client.post(INITIALIZE, json=plain, headers=sender.headers)).json()["correspondences"][0][
        "correspondenceId"
    ]
    await drain(services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"Accept-Language": "en"}
    ) as b:
        b.cookies.set("corr_session", dev_issuer.mint(scope=READ, pid=me))
        assert 'action="/inbox/' + other + '/forward"' not in (await b.get(f"/inbox/{other}")).text
        page = (await b.get(f"/inbox/{cid}")).text  # opening it reads it
        assert f'action="/inbox/{cid}/forward"' in page and "Forward by e-mail" in page
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token is not None
        to = address("web")
        forged = await b.post(f"/inbox/{cid}/forward", data={"forward_to": to, "csrf": "0" * 64})
        assert forged.status_code == 403
        bad = await b.post(f"/inbox/{cid}/forward", data={"forward_to": "nope", "csrf": token.group(1)})
        assert bad.status_code == 303
        assert "Invalid email provided for custom recipient." in (await b.get(bad.headers["location"])).text
        nul = await b.post(
            f"/inbox/{cid}/forward",
            data={"forward_to": to, "forwarding_text": "a\x00b", "csrf": token.group(1)},
        )
        assert nul.status_code == 303
        assert "Forwarding text must be plain text" in (await b.get(nul.headers["location"])).text
        done = await b.post(
            f"/inbox/{cid}/forward",
            data={"forward_to": to, "forwarding_text": "Fra nettet", "csrf": token.group(1)},
        )
        assert done.status_code == 303
        assert f"being forwarded to {to}" in (await b.get(done.headers["location"])).text
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"Accept-Language": "nb"}
    ) as b:
        b.cookies.set("corr_session", dev_issuer.mint(scope=READ, pid=me))
        assert "Videresend på e-post" in (await b.get(f"/inbox/{cid}")).text
    await run_jobs(svc)
    [message] = smtp.messages(to)
    assert body_text(message) == f"Fra nettet\n\n---\n\n{BODY}"
