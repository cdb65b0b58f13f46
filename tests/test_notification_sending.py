"""Notification sending (issue 5, behaviour.md §5): e-mails through a real SMTP server process and
SMS through a real HTTP gateway receiver, driven by the job worker with time moved by the clock."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from correspondence.adapters import open_email_sender, open_sms_gateway
from correspondence.app import build_worker
from correspondence.auth.tokens import DevIssuer
from correspondence.kit import clock
from correspondence.kit.jobs import enqueue
from correspondence.notification import repository as notification_repo
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders
from tests.conftest import INITIALIZE, Sender
from tests.notification_servers import (
    GatewayReceiver,
    SmtpServer,
    body_text,
    self_signed_certificate,
    start_gateway,
    start_smtp_server,
)

ORG = "urn:altinn:organization:identifier-no:"
PERSON = "urn:altinn:person:identifier-no:"
READ = "altinn:correspondence.read"
GATEWAY_TOKEN = "gateway-secret"

Notifier = Callable[..., Awaitable[Services]]


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    server = start_smtp_server(tmp_path_factory.mktemp("smtp") / "messages.jsonl")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayReceiver]:
    receiver = start_gateway()
    yield receiver
    receiver.stop()


@pytest.fixture
async def notifier(services: Services, smtp: SmtpServer, gateway: GatewayReceiver) -> AsyncIterator[Notifier]:
    """Services wired to the real SMTP server and gateway, by the service's own wiring functions;
    SMS allowed at any hour unless a test sets the window."""
    opened: list[Services] = []

    async def make(**overrides: Any) -> Services:
        settings = services.settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "smtp_tls": "none",
                "smtp_connections": 4,
                "sms_gateway_url": gateway.url,
                "sms_gateway_token": SecretStr(GATEWAY_TOKEN),
                "sms_window_start": time(0, 0),
                "sms_window_end": time(0, 0),
                "notification_retry_seconds": 60.0,
                "notification_max_attempts": 3,
                **overrides,
            }
        )
        svc = dataclasses.replace(services, settings=settings, worker=None)
        svc.email = open_email_sender(settings)
        svc.sms = open_sms_gateway(settings)
        opened.append(svc)
        return svc

    yield make
    for svc in opened:
        await svc.close_messaging()


async def drain(svc: Services) -> None:
    worker = build_worker(svc)
    while await worker.run_once():
        pass


def address(kind: str = "post") -> str:
    return f"{kind}-{uuid.uuid4().hex[:10]}@example.no"


_mobiles = iter(range(41_000_000, 41_999_999, 7))


def mobile() -> str:
    return f"+47{next(_mobiles)}"


def generic(channel: str = "Email", **kw: Any) -> dict[str, Any]:
    return {"notificationTemplate": "GenericAltinnMessage", "notificationChannel": channel, **kw}


async def initialize(
    client: httpx.AsyncClient, sender: Sender, recipients: list[str], note: dict[str, Any], **kw: Any
) -> list[dict[str, Any]]:
    body = builders.initialize_body(sender.resource_id, recipients, notification_block=note, **kw)
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["correspondences"]
    return items


async def details(client: httpx.AsyncClient, sender: Sender, cid: str) -> dict[str, Any]:
    response = await client.get(f"{INITIALIZE}/{cid}/details", headers=sender.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def order(body: dict[str, Any], *, reminder: bool = False) -> dict[str, Any]:
    [found] = [n for n in body["notifications"] if n["isReminder"] is reminder]
    return found


async def events_for(db: asyncpg.Connection, ids: list[str]) -> list[str]:
    rows = await db.fetch(
        "SELECT type FROM event_outbox WHERE ids && $1::uuid[] ORDER BY id", [uuid.UUID(i) for i in ids]
    )
    return [r["type"] for r in rows]


async def org_with_email(db: asyncpg.Connection, name: str | None = None) -> tuple[str, str]:
    org = builders.org_number()
    mail = address()
    await registry.set_contact(db, party=ORG + org, email=mail, mobile=None, reserved=None)
    if name:
        await registry.set_party_name(db, party=ORG + org, name=name)
    return org, mail


# --- the main notification --------------------------------------------------------------------------


async def test_main_email_arrives_at_publish_in_norwegian(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    await registry.set_party_name(db, party=ORG + sender.org, name="SKATTEETATEN")
    org, mail = await org_with_email(db, name="BLÅBÆR OG SØNN AS")
    [item] = await initialize(client, sender, [f"0192:{org}"], generic())
    await drain(svc)

    [message] = smtp.messages(mail)
    assert message["Subject"] == "En melding har blitt mottatt i Altinn"
    assert body_text(message) == (
        "Hei. Blåbær Og Sønn As har mottatt en ny melding fra Skatteetaten. "
        "Logg deg inn i Altinn for å se denne meldingen."
    )
    main = order(await details(client, sender, item["correspondenceId"]))
    assert main["processingStatus"]["status"] == "Order_Completed"
    email = main["notificationStatusDetails"]["email"]
    assert email["sendStatus"]["status"] == "Email_Succeeded"
    assert email["succeeded"] is True
    assert email["recipient"]["emailAddress"] == mail
    assert email["recipient"]["organizationNumber"] == org
    assert await events_for(db, [main["id"]]) == ["notificationcreated"]
    assert "correspondencenotificationdelivered" in await events_for(db, [item["correspondenceId"]])


async def test_parties_without_a_registered_name_are_named_by_their_number(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    org, mail = await org_with_email(db)  # neither the sender nor the recipient has a name
    await initialize(client, sender, [f"0192:{org}"], generic())
    await drain(svc)

    [message] = smtp.messages(mail)
    assert body_text(message) == (
        f"Hei. {org} har mottatt en ny melding fra {sender.org}. "
        "Logg deg inn i Altinn for å se denne meldingen."
    )


async def test_english_content_gets_the_english_template_with_the_senders_text(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    org, mail = await org_with_email(db, name="ACME LTD")
    note = generic(emailSubject="($messageTitle$)", emailBody="It concerns $messageTitle$ in $resourceName$.")
    await initialize(
        client,
        sender,
        [f"0192:{org}"],
        note,
        messageSender="The Tax Office",
        content={"language": "en", "messageTitle": "Your tax return"},
    )
    await drain(svc)

    [message] = smtp.messages(mail)
    assert message["Subject"] == "A message has been received in Altinn (Your tax return)"
    assert body_text(message) == (
        "Hello. Acme Ltd has received a new message from The Tax Office. "
        "It concerns Your tax return in Test resource. Log in to Altinn to see this message."
    )


async def test_recipient_name_is_filled_in_per_address_and_html_is_sent_as_html(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    person, person_mail = builders.national_id(), address()
    await registry.set_contact(db, party=PERSON + person, email=person_mail, mobile=None, reserved=False)
    await registry.set_party_name(db, party=PERSON + person, name="KARI NORDMANN")
    org, org_mail = await org_with_email(db, name="ACME AS")
    note = {
        "notificationChannel": "Email",
        "emailSubject": "Til $recipientName$",
        "emailBody": "<p>Hei $recipientName$, fra $sendersName$</p>",
        "emailContentType": "Html",
        "customRecipients": [{"organizationNumber": org}],
    }
    await initialize(client, sender, [person], note, messageSender="Etaten")
    await drain(svc)

    [to_person] = smtp.messages(person_mail)
    assert to_person["Subject"] == "Til Kari Nordmann"
    assert to_person.get_content_type() == "text/html"
    assert body_text(to_person) == "<p>Hei Kari Nordmann, fra Etaten</p>"
    [to_org] = smtp.messages(org_mail)
    assert to_org["Subject"] == "Til Acme As"


async def test_the_main_email_goes_out_even_when_already_read(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,
    smtp: SmtpServer,
    dev_issuer: DevIssuer,
) -> None:
    """Published, read at once, then the notification job runs: the main one is still sent."""
    svc = await notifier()
    org, mail = await org_with_email(db)
    [item] = await initialize(client, sender, [f"0192:{org}"], generic())
    worker = build_worker(svc)
    await worker.run_once()  # publish (and process the order: a delivery queued)
    reader = {"Authorization": f"Bearer {dev_issuer.mint(scope=READ, org=org)}"}
    cid = item["correspondenceId"]
    assert (await client.get(f"{INITIALIZE}/{cid}/content", headers=reader)).status_code == 200
    await drain(svc)
    assert len(smtp.messages(mail)) == 1


async def test_an_sms_order_reaches_the_gateway(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,
    gateway: GatewayReceiver,
) -> None:
    svc = await notifier()
    person = builders.national_id()
    number = mobile()
    await registry.set_contact(db, party=PERSON + person, email=None, mobile=number[3:], reserved=False)
    note = {"notificationChannel": "Sms", "smsBody": "Du har fått post: $messageTitle$"}
    [item] = await initialize(client, sender, [person], note)
    await drain(svc)

    [request] = [r for r in gateway.requests if r["json"]["to"] == number]
    assert request["authorization"] == f"Bearer {GATEWAY_TOKEN}"
    assert request["json"] == {"to": number, "from": "Altinn", "body": "Du har fått post: Meldingstittel"}
    sms = order(await details(client, sender, item["correspondenceId"]))["notificationStatusDetails"]["sms"]
    assert sms["sendStatus"]["status"] == "SMS_Accepted"
    assert sms["recipient"] == {
        "emailAddress": None,
        "mobileNumber": number,
        "organizationNumber": None,
        "nationalIdentityNumber": person,
        "isReserved": False,
    }


@pytest.mark.parametrize(
    ("channel", "has_email", "has_mobile", "expected"),
    [
        ("EmailPreferred", True, True, {"Email"}),
        ("EmailPreferred", False, True, {"SMS"}),
        ("SmsPreferred", True, True, {"SMS"}),
        ("SmsPreferred", True, False, {"Email"}),
        ("EmailAndSms", True, True, {"Email", "SMS"}),
    ],
)
async def test_channels_choose_email_or_sms_by_what_the_recipient_has(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,
    smtp: SmtpServer,
    gateway: GatewayReceiver,
    channel: str,
    has_email: bool,
    has_mobile: bool,
    expected: set[str],
) -> None:
    svc = await notifier()
    org = builders.org_number()
    mail, number = address(), mobile()
    await registry.set_contact(
        db,
        party=ORG + org,
        email=mail if has_email else None,
        mobile=number if has_mobile else None,
        reserved=None,
    )
    await initialize(client, sender, [f"0192:{org}"], generic(channel))
    await drain(svc)
    got = ({"Email"} if smtp.messages(mail) else set()) | ({"SMS"} if gateway.to(number) else set())
    assert got == expected


# --- reminders ----------------------------------------------------------------------------------


async def test_a_reminder_is_sent_after_seven_days_unread(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    org, mail = await org_with_email(db)
    [item] = await initialize(client, sender, [f"0192:{org}"], generic(sendReminder=True))
    await drain(svc)
    assert len(smtp.messages(mail)) == 1

    clock.shift(timedelta(days=6, hours=23))
    await drain(svc)
    assert len(smtp.messages(mail)) == 1  # not yet

    clock.shift(timedelta(hours=1, minutes=1))
    await drain(svc)
    _main, reminder = smtp.messages(mail)
    assert reminder["Subject"] == "Påminnelse - en melding har blitt mottatt i Altinn"
    assert body_text(reminder).startswith("Hei. Dette er en påminnelse om at")
    body = await details(client, sender, item["correspondenceId"])
    assert order(body, reminder=True)["processingStatus"]["status"] == "Order_Completed"
    assert "correspondencenotificationreminderdelivered" in await events_for(db, [item["correspondenceId"]])


async def test_no_reminder_when_the_correspondence_was_read(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,
    smtp: SmtpServer,
    dev_issuer: DevIssuer,
) -> None:
    svc = await notifier()
    org, mail = await org_with_email(db)
    [item] = await initialize(client, sender, [f"0192:{org}"], generic(sendReminder=True))
    await drain(svc)
    cid = item["correspondenceId"]
    reader = {"Authorization": f"Bearer {dev_issuer.mint(scope=READ, org=org)}"}
    assert (await client.get(f"{INITIALIZE}/{cid}/content", headers=reader)).status_code == 200

    clock.shift(timedelta(days=7, minutes=1))
    await drain(svc)
    assert len(smtp.messages(mail)) == 1  # the main one only
    reminder = order(await details(client, sender, cid), reminder=True)
    assert reminder["processingStatus"]["status"] == "Order_SendConditionNotMet"


# --- reservation and custom recipients ------------------------------------------------------------


async def test_a_reserved_person_gets_nothing_unless_reservation_is_ignored(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    person, mail = builders.national_id(), address()
    await registry.set_contact(db, party=PERSON + person, email=mail, mobile=None, reserved=True)

    other, other_mail = builders.national_id(), address()
    await registry.set_contact(db, party=PERSON + other, email=other_mail, mobile=None, reserved=False)
    kept, _other = await initialize(client, sender, [person, other], generic())
    await drain(svc)
    assert (kept["status"], kept["notifications"]) == ("Reserved", [])
    assert smtp.messages(mail) == []
    assert len(smtp.messages(other_mail)) == 1

    [ignored] = await initialize(client, sender, [person], generic(), ignoreReservation=True)
    await drain(svc)
    [message] = smtp.messages(mail)
    assert message["Subject"] == "En melding har blitt mottatt i Altinn"
    email = order(await details(client, sender, ignored["correspondenceId"]))["notificationStatusDetails"][
        "email"
    ]
    assert email["recipient"]["isReserved"] is True
    assert email["sendStatus"]["status"] == "Email_Succeeded"


async def test_a_reserved_custom_recipient_is_recorded_and_not_sent(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    org, org_mail = await org_with_email(db)
    person, person_mail = builders.national_id(), address()
    await registry.set_contact(db, party=PERSON + person, email=person_mail, mobile=None, reserved=True)
    note = generic(
        customRecipients=[{"nationalIdentityNumber": person}], overrideRegisteredContactInformation=True
    )
    [item] = await initialize(client, sender, [f"0192:{org}"], note)
    await drain(svc)

    assert smtp.messages(person_mail) == []
    assert smtp.messages(org_mail) == []  # overridden
    main = order(await details(client, sender, item["correspondenceId"]))
    email = main["notificationStatusDetails"]["email"]
    assert email["sendStatus"]["status"] == "Email_Failed_RecipientReserved"
    assert email["recipient"]["nationalIdentityNumber"] == person
    assert main["processingStatus"]["status"] == "Order_Completed"
    assert "correspondencenotificationallfailed" in await events_for(db, [item["correspondenceId"]])


async def test_custom_recipients_are_notified_besides_the_recipient(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,
    smtp: SmtpServer,
    gateway: GatewayReceiver,
) -> None:
    svc = await notifier()
    org, org_mail = await org_with_email(db)
    other_org, other_mail = await org_with_email(db)
    direct_mail, direct_mobile = address("direct"), mobile()
    note = generic(
        "EmailPreferred",
        customRecipients=[
            {"emailAddress": direct_mail},
            {"mobileNumber": direct_mobile},
            {"organizationNumber": other_org},
        ],
    )
    [item] = await initialize(client, sender, [f"0192:{org}"], note)
    await drain(svc)
    for mail in (org_mail, other_mail, direct_mail):
        assert len(smtp.messages(mail)) == 1, mail
    [sms] = gateway.to(direct_mobile)
    assert sms["body"].startswith("Hei.")
    # Details list every address per channel, newest first, the newest also as `email`/`sms` (§6.7).
    status = order(await details(client, sender, item["correspondenceId"]))["notificationStatusDetails"]
    emails = {e["recipient"]["emailAddress"] for e in status["emails"]}
    assert emails == {org_mail, other_mail, direct_mail} and status["email"] == status["emails"][0]
    assert [s["recipient"]["mobileNumber"] for s in status["smses"]] == [direct_mobile]
    assert status["sms"] == status["smses"][0]


async def test_overriding_contact_information_notifies_only_the_custom_recipients(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    org, org_mail = await org_with_email(db)
    direct = address("direct")
    note = generic(customRecipients=[{"emailAddress": direct}], overrideRegisteredContactInformation=True)
    await initialize(client, sender, [f"0192:{org}"], note)
    await drain(svc)
    assert smtp.messages(org_mail) == []
    assert len(smtp.messages(direct)) == 1


async def test_a_recipient_without_contact_points_is_recorded_as_not_identified(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier
) -> None:
    svc = await notifier()
    [item] = await initialize(client, sender, [f"0192:{builders.org_number()}"], generic())
    await drain(svc)
    main = order(await details(client, sender, item["correspondenceId"]))
    status = main["notificationStatusDetails"]["email"]["sendStatus"]["status"]
    assert status == "Email_Failed_RecipientNotIdentified"
    assert main["processingStatus"]["status"] == "Order_Completed"


# --- failures, retries, never twice -----------------------------------------------------------------


async def test_a_refusing_smtp_server_is_retried_then_failed_without_duplicates(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    org, mail = builders.org_number(), address("fail451")
    await registry.set_contact(db, party=ORG + org, email=mail, mobile=None, reserved=None)
    [item] = await initialize(client, sender, [f"0192:{org}"], generic())
    cid = item["correspondenceId"]
    await drain(svc)
    assert smtp.refusals(mail) == 1
    email = order(await details(client, sender, cid))["notificationStatusDetails"]["email"]
    assert email["sendStatus"]["status"] == "Email_Failed_TransientError"
    assert "451" in email["sendStatus"]["description"]

    clock.shift(timedelta(seconds=61))  # first retry after 60 s
    await drain(svc)
    assert smtp.refusals(mail) == 2
    clock.shift(timedelta(seconds=121))  # then 120 s; the third attempt is the last
    await drain(svc)
    assert smtp.refusals(mail) == 3
    main = order(await details(client, sender, cid))
    assert main["notificationStatusDetails"]["email"]["sendStatus"]["status"] == "Email_Failed"
    assert main["processingStatus"]["status"] == "Order_Completed"

    clock.shift(timedelta(hours=2))
    await drain(svc)
    assert smtp.refusals(mail) == 3
    assert smtp.messages(mail) == []
    assert "correspondencenotificationallfailed" in await events_for(db, [cid])


async def test_a_transient_failure_is_retried_and_delivered_once(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    org, mail = builders.org_number(), address("flaky1")
    await registry.set_contact(db, party=ORG + org, email=mail, mobile=None, reserved=None)
    [item] = await initialize(client, sender, [f"0192:{org}"], generic())
    await drain(svc)
    assert smtp.messages(mail) == []
    clock.shift(timedelta(seconds=61))
    await drain(svc)
    assert len(smtp.messages(mail)) == 1
    email = order(await details(client, sender, item["correspondenceId"]))["notificationStatusDetails"][
        "email"
    ]
    assert email["sendStatus"]["status"] == "Email_Succeeded"

    # The same order and the same addresses queued again (a re-run) send nothing new.
    main_id = order(await details(client, sender, item["correspondenceId"]))["id"]
    ids = [
        r["id"]
        for r in await db.fetch(
            "SELECT id FROM notification_deliveries WHERE order_id = $1", uuid.UUID(main_id)
        )
    ]
    await enqueue(db, notification_repo.ORDER_TASK, payload={"ids": [main_id]})
    await enqueue(db, notification_repo.DELIVER_TASK, payload={"ids": [str(i) for i in ids]})
    clock.shift(timedelta(hours=3))
    await drain(svc)
    assert len(smtp.messages(mail)) == 1


async def test_a_permanent_refusal_fails_at_once(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    svc = await notifier()
    org, mail = builders.org_number(), address("fail550")
    await registry.set_contact(db, party=ORG + org, email=mail, mobile=None, reserved=None)
    [item] = await initialize(client, sender, [f"0192:{org}"], generic())
    await drain(svc)
    clock.shift(timedelta(hours=2))
    await drain(svc)
    assert smtp.refusals(mail) == 1
    email = order(await details(client, sender, item["correspondenceId"]))["notificationStatusDetails"][
        "email"
    ]
    assert email["sendStatus"]["status"] == "Email_Failed"
    assert email["succeeded"] is False


async def test_an_unreachable_smtp_server_is_retried_then_failed(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, tmp_path: Path
) -> None:
    stopped = start_smtp_server(tmp_path / "gone.jsonl")
    port = stopped.port
    stopped.stop()  # nothing listens there any more: connections are refused
    svc = await notifier(smtp_port=port, notification_max_attempts=2)
    org, _mail = await org_with_email(db)
    [item] = await initialize(client, sender, [f"0192:{org}"], generic())
    await drain(svc)
    cid = item["correspondenceId"]
    email = order(await details(client, sender, cid))["notificationStatusDetails"]["email"]
    assert email["sendStatus"]["status"] == "Email_Failed_TransientError"
    clock.shift(timedelta(seconds=61))
    await drain(svc)
    email = order(await details(client, sender, cid))["notificationStatusDetails"]["email"]
    assert email["sendStatus"]["status"] == "Email_Failed"


async def test_starttls_with_credentials_and_implicit_tls(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, tmp_path: Path
) -> None:
    """The TLS modes and SMTP AUTH against servers that require them; a wrong password is an
    operator's mistake, so it is retried rather than failed."""
    cert, key = self_signed_certificate(tmp_path)
    strict = start_smtp_server(
        tmp_path / "starttls.jsonl", "--starttls", cert, key, "--auth", "mailer", "s3cret"
    )
    implicit = start_smtp_server(tmp_path / "tls.jsonl", "--tls", cert, key)
    try:
        tls = {"smtp_validate_certs": False, "smtp_username": "mailer"}
        good = await notifier(
            smtp_port=strict.port, smtp_tls="starttls", smtp_password=SecretStr("s3cret"), **tls
        )
        wrong = await notifier(
            smtp_port=strict.port, smtp_tls="starttls", smtp_password=SecretStr("wrong"), **tls
        )
        wrapped = await notifier(smtp_port=implicit.port, smtp_tls="tls", smtp_validate_certs=False)
        for svc, server, kind in (
            (good, strict, "good"),
            (wrong, strict, "wrong"),
            (wrapped, implicit, "tls"),
        ):
            org, mail = await org_with_email(db)
            [item] = await initialize(client, sender, [f"0192:{org}"], generic())
            await drain(svc)
            email = order(await details(client, sender, item["correspondenceId"]))[
                "notificationStatusDetails"
            ]["email"]
            if kind == "wrong":
                assert server.messages(mail) == []
                assert email["sendStatus"]["status"] == "Email_Failed_TransientError"
                assert "authentication" in email["sendStatus"]["description"]
            else:
                assert len(server.messages(mail)) == 1, kind
                assert email["sendStatus"]["status"] == "Email_Succeeded"
    finally:
        strict.stop()
        implicit.stop()


async def test_a_worker_that_died_while_sending_never_sends_again(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,
    smtp: SmtpServer,
    services: Services,
) -> None:
    """A delivery claimed (`Email_Sending`) by a worker that then vanished is given up as
    failed with an unknown outcome once its claim runs out: at most once, never twice."""
    svc = await notifier()
    org, mail = await org_with_email(db)
    [item] = await initialize(client, sender, [f"0192:{org}"], generic())
    worker = build_worker(svc)
    # One round: the publish lane publishes, then the other lane processes the order (the address
    # is stored, a deliver job queued for the next round).
    await worker.run_once()
    [row] = await db.fetch(
        "SELECT id FROM notification_deliveries WHERE correspondence_id = $1",
        uuid.UUID(item["correspondenceId"]),
    )
    now = clock.now()
    claimed = await notification_repo.claim_deliveries(
        services.pool, [row["id"]], now, now + timedelta(minutes=5)
    )
    assert len(claimed) == 1  # ... and the worker that claimed it died here

    await drain(svc)
    assert smtp.messages(mail) == []
    clock.shift(timedelta(minutes=6))
    await drain(svc)
    assert smtp.messages(mail) == []
    email = order(await details(client, sender, item["correspondenceId"]))["notificationStatusDetails"][
        "email"
    ]
    assert email["sendStatus"]["status"] == "Email_Failed"
    assert "unknown" in email["sendStatus"]["description"]


async def test_a_failing_gateway_is_retried_and_a_rejected_number_fails(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,
    gateway: GatewayReceiver,
) -> None:
    svc = await notifier()
    busy, rejected = mobile(), mobile()
    gateway.answers[busy] = 503
    gateway.answers[rejected] = 400
    note = {"notificationChannel": "Sms", "smsBody": "Hei"}
    items = []
    for number in (busy, rejected):
        org = builders.org_number()
        await registry.set_contact(db, party=ORG + org, email=None, mobile=number, reserved=None)
        [item] = await initialize(client, sender, [f"0192:{org}"], note)
        items.append(item)
    await drain(svc)
    gateway.answers.pop(busy)  # the gateway recovers
    clock.shift(timedelta(seconds=61))
    await drain(svc)
    assert len(gateway.to(busy)) == 2
    assert len(gateway.to(rejected)) == 1
    statuses = []
    for item in items:
        sms = order(await details(client, sender, item["correspondenceId"]))["notificationStatusDetails"][
            "sms"
        ]
        statuses.append(sms["sendStatus"]["status"])
    assert statuses == ["SMS_Accepted", "SMS_Failed"]


# --- the SMS window -----------------------------------------------------------------------------------


async def test_sms_waits_for_the_daytime_window(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,
    gateway: GatewayReceiver,
    smtp: SmtpServer,
) -> None:
    """With the window set to open two hours from now, e-mail goes at once and the SMS then."""
    oslo = ZoneInfo("Europe/Oslo")
    opens = (datetime.now(UTC) + timedelta(hours=2)).astimezone(oslo).replace(second=0, microsecond=0)
    closes = opens + timedelta(hours=1)
    svc = await notifier(sms_window_start=opens.time(), sms_window_end=closes.time())
    org, mail, number = builders.org_number(), address(), mobile()
    await registry.set_contact(db, party=ORG + org, email=mail, mobile=number, reserved=None)
    [item] = await initialize(client, sender, [f"0192:{org}"], generic("EmailAndSms"))
    await drain(svc)
    assert len(smtp.messages(mail)) == 1
    assert gateway.to(number) == []
    main = order(await details(client, sender, item["correspondenceId"]))
    assert main["notificationStatusDetails"]["sms"]["sendStatus"]["status"] == "SMS_New"
    assert main["processingStatus"]["status"] == "Processing"

    clock.shift(timedelta(hours=1, minutes=58))
    await drain(svc)
    assert gateway.to(number) == []
    clock.shift(timedelta(minutes=3))
    await drain(svc)
    assert len(gateway.to(number)) == 1
    main = order(await details(client, sender, item["correspondenceId"]))
    assert main["processingStatus"]["status"] == "Order_Completed"


# --- what the sender sees -----------------------------------------------------------------------------


async def test_overview_lists_the_orders_and_details_show_them_before_sending(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    org, mail = await org_with_email(db)
    [item] = await initialize(client, sender, [f"0192:{org}"], generic(sendReminder=True))
    cid = item["correspondenceId"]
    overview = (await client.get(f"{INITIALIZE}/{cid}", headers=sender.headers)).json()
    assert [(n["notificationOrderId"], n["isReminder"]) for n in overview["notifications"]] == [
        (n["orderId"], n["isReminder"]) for n in item["notifications"]
    ]
    main = order(await details(client, sender, cid))
    assert main["processingStatus"]["status"] == "Registered"
    assert main["notificationStatusDetails"]["email"]["sendStatus"]["status"] == "Email_New"
    assert main["notificationStatusDetails"]["email"]["recipient"]["emailAddress"] == mail


class _PoolSpy:
    """The pool it wraps, noting every statement run through it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.statements: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._pool, name)
        if name not in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
            return attr

        async def call(sql: str, *args: Any, **kwargs: Any) -> Any:
            self.statements.append(sql)
            return await attr(sql, *args, **kwargs)

        return call


async def test_deliveries_are_claimed_and_recorded_on_the_workers_connections(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, notifier: Notifier, smtp: SmtpServer
) -> None:
    # `serve` gives its job worker a pool of its own, planning each statement for its values; the
    # API's pool plans generically, and a claim's generic plan over a batch of ids ran into the
    # command timeout under load. What a delivery commits apart from its job goes to the worker's.
    svc = await notifier()
    worker_pool = svc.pool
    api_pool = _PoolSpy(worker_pool)
    svc.pool = api_pool  # type: ignore[assignment]
    org, mail = await org_with_email(db)
    [item] = await initialize(client, sender, [f"0192:{org}"], generic())
    worker = build_worker(svc, worker_pool)
    while await worker.run_once():
        pass
    assert len(smtp.messages(mail)) == 1
    main = order(await details(client, sender, item["correspondenceId"]))
    assert main["notificationStatusDetails"]["email"]["sendStatus"]["status"] == "Email_Succeeded"
    assert not [s for s in api_pool.statements if "notification_deliveries" in s]
