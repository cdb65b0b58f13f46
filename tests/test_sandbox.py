"""Sandbox outcomes (issue 13, part 3): reserved addresses and parties behave in a known way, and
what they produce — statuses, descriptions' codes, events — is what the real failure produces,
through the real worker, the tests' SMTP server and SMS gateway."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.adapters import open_email_sender, open_sms_gateway
from correspondence.adapters.sandbox import SandboxEmailSender, SandboxSmsGateway
from correspondence.auth.tokens import DevIssuer
from correspondence.config import Settings, TrustedIssuer
from correspondence.kit import clock
from correspondence.sandbox import values as sandbox
from correspondence.sandbox.use_cases.sync_registry import sync_registry
from correspondence.services import Services
from tests import builders
from tests.conftest import INITIALIZE, Sender
from tests.notification_servers import GatewayReceiver, SmtpServer
from tests.test_notification_sending import (
    Notifier,
    address,
    details,
    drain,
    events_for,
    gateway,  # noqa: F401 (fixture)
    generic,
    initialize,
    mobile,
    notifier,  # noqa: F401 (fixture)
    order,
    smtp,  # noqa: F401 (fixture)
)

SANDBOX = "/ext/api/v1/sandbox"
DELIVERED_ORG, FAILING_ORG, FLAKY_ORG, SILENT_ORG = (p.number for p in sandbox.PARTIES[:4])
RESERVED_PERSON, SILENT_PERSON = sandbox.PARTIES[4].number, sandbox.PARTIES[5].number


@pytest.fixture(autouse=True)
async def _sandbox_rows(services: Services) -> None:
    """The session's app wrote the sandbox rows at start, but an app started in production mode by
    another test (on the same database) removed them again: put them back."""
    await sync_registry(services.pool, enabled=True)


def to_address(address: str) -> dict[str, Any]:
    return generic(customRecipients=[{"emailAddress": address}], overrideRegisteredContactInformation=True)


def to_mobile(number: str) -> dict[str, Any]:
    return {
        "notificationChannel": "Sms",
        "smsBody": "Hei",
        "customRecipients": [{"mobileNumber": number}],
        "overrideRegisteredContactInformation": True,
    }


async def run(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    svc: Services,
    note: dict[str, Any],
    channel: str,
    between: Callable[[], None] = lambda: None,
) -> tuple[list[str], list[str], list[str]]:
    """Initialize, send, and retry once after 61 s: the channel's status after each round, the
    descriptions, and the correspondence's and order's events."""
    [item] = await initialize(client, sender, [f"0192:{builders.org_number()}"], note)
    cid = item["correspondenceId"]
    statuses, descriptions = [], []
    for _ in range(2):
        await drain(svc)
        main = order(await details(client, sender, cid))
        status = main["notificationStatusDetails"][channel]["sendStatus"]
        statuses.append(status["status"])
        descriptions.append(status["description"] or "")
        between()
        clock.shift(timedelta(seconds=61))
    return statuses, descriptions, await events_for(db, [cid, main["id"]])


# --- e-mail ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reserved", "real", "statuses", "code"),
    [
        (sandbox.EMAIL_DELIVERED, "post", ["Email_Succeeded", "Email_Succeeded"], None),
        (sandbox.EMAIL_PERMANENT_FAILURE, "fail550", ["Email_Failed", "Email_Failed"], "550"),
        (
            sandbox.EMAIL_TEMPORARY_FAILURE,
            "flaky1",
            ["Email_Failed_TransientError", "Email_Succeeded"],
            "451",
        ),
    ],
)
async def test_sandbox_email_addresses_behave_as_a_real_mail_server_answering_so(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,  # noqa: F811
    smtp: SmtpServer,  # noqa: F811
    reserved: str,
    real: str,
    statuses: list[str],
    code: str | None,
) -> None:
    svc = await notifier()
    sandboxed = await run(client, sender, db, svc, to_address(reserved), "email")
    assert [r for r in smtp.records() if r["to"] == reserved] == []  # it never reaches the mail server

    real_address = address(real)  # the test SMTP server answers this one for real
    answered = await run(client, sender, db, svc, to_address(real_address), "email")
    assert sandboxed[0] == answered[0] == statuses
    assert sandboxed[2] == answered[2]  # the same events, in the same order
    if code is not None:
        assert f". {code} " in sandboxed[1][0] and f". {code} " in answered[1][0]
    if statuses[-1] == "Email_Succeeded":
        assert "correspondencenotificationdelivered" in sandboxed[2]
    else:
        assert "correspondencenotificationallfailed" in sandboxed[2]


async def test_address_case_does_not_matter(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,  # noqa: F811
) -> None:
    svc = await notifier()
    statuses, _, _ = await run(
        client, sender, db, svc, to_address(sandbox.EMAIL_PERMANENT_FAILURE.upper()), "email"
    )
    assert statuses[0] == "Email_Failed"


# --- SMS --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reserved", "answer", "statuses"),
    [
        (sandbox.SMS_DELIVERED, None, ["SMS_Accepted", "SMS_Accepted"]),
        (sandbox.SMS_PERMANENT_FAILURE, 400, ["SMS_Failed", "SMS_Failed"]),
        (sandbox.SMS_TEMPORARY_FAILURE, 503, ["SMS_New", "SMS_Accepted"]),
    ],
)
async def test_sandbox_mobile_numbers_behave_as_a_real_gateway_answering_so(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,  # noqa: F811
    gateway: GatewayReceiver,  # noqa: F811
    reserved: str,
    answer: int | None,
    statuses: list[str],
) -> None:
    svc = await notifier()
    sandboxed = await run(client, sender, db, svc, to_mobile(reserved), "sms")
    assert gateway.to(reserved) == []  # a sandbox number never reaches the gateway

    number = mobile()
    if answer is not None:
        gateway.answers[number] = answer

    def recover() -> None:
        if answer == 503:
            gateway.answers.pop(number, None)

    answered = await run(client, sender, db, svc, to_mobile(number), "sms", between=recover)
    gateway.answers.pop(number, None)
    assert sandboxed[0] == answered[0] == statuses
    assert sandboxed[2] == answered[2]
    if answer is not None:
        said = f"SMS gateway answered {answer}: "  # then the gateway's own body
        assert said in sandboxed[1][0] and said in answered[1][0]


# --- parties in the contact registry -------------------------------------------------------------------


async def test_sandbox_organisations_are_notified_at_their_sandbox_contact_points(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,  # noqa: F811
) -> None:
    svc = await notifier()
    items = await initialize(
        client,
        sender,
        [f"0192:{DELIVERED_ORG}", f"0192:{FAILING_ORG}", f"0192:{FLAKY_ORG}"],
        generic("EmailAndSms"),
    )
    assert [i["notifications"][0]["status"] for i in items] == ["Success"] * 3
    await drain(svc)
    clock.shift(timedelta(seconds=61))
    await drain(svc)
    found = []
    for item in items:
        status = order(await details(client, sender, item["correspondenceId"]))["notificationStatusDetails"]
        found.append((status["email"]["sendStatus"]["status"], status["sms"]["sendStatus"]["status"]))
    assert found == [
        ("Email_Succeeded", "SMS_Accepted"),
        ("Email_Failed", "SMS_Failed"),
        ("Email_Succeeded", "SMS_Accepted"),  # after their one transient failure
    ]


async def test_sandbox_parties_without_contact_points_are_not_identified(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,  # noqa: F811
) -> None:
    svc = await notifier()
    items = await initialize(client, sender, [f"0192:{SILENT_ORG}", SILENT_PERSON], generic())
    assert [i["notifications"][0]["status"] for i in items] == ["MissingContact"] * 2
    await drain(svc)
    for item in items:
        main = order(await details(client, sender, item["correspondenceId"]))
        status = main["notificationStatusDetails"]["email"]["sendStatus"]["status"]
        assert status == "Email_Failed_RecipientNotIdentified"
        assert "correspondencenotificationallfailed" in await events_for(db, [item["correspondenceId"]])


async def test_the_sandbox_person_is_reserved_as_in_the_contact_registry(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,  # noqa: F811
) -> None:
    svc = await notifier()
    alone = builders.initialize_body(sender.resource_id, [RESERVED_PERSON], notification_block=generic())
    refused = await client.post(INITIALIZE, json=alone, headers=sender.headers)
    assert (refused.status_code, refused.json()["errorCode"]) == (422, 1030)

    reserved, _other = await initialize(client, sender, [RESERVED_PERSON, SILENT_PERSON], generic())
    assert (reserved["status"], reserved["notifications"]) == ("Reserved", [])
    assert "correspondencereceiverreserved" in await events_for(db, [reserved["correspondenceId"]])

    [ignored] = await initialize(client, sender, [RESERVED_PERSON], generic(), ignoreReservation=True)
    await drain(svc)
    email = order(await details(client, sender, ignored["correspondenceId"]))["notificationStatusDetails"][
        "email"
    ]
    assert email["recipient"]["isReserved"] is True
    assert email["sendStatus"]["status"] == "Email_Succeeded"


async def test_sandbox_rows_are_in_the_registry_only_while_the_sandbox_is_on(
    services: Services, db: asyncpg.Connection
) -> None:
    parties = [p.urn for p in sandbox.PARTIES]
    query = "SELECT party, reserved FROM contacts WHERE party = ANY($1::text[]) AND sandbox ORDER BY party"
    assert len(await db.fetch(query, parties)) == len(parties)
    try:
        await sync_registry(services.pool, enabled=False)
        assert await db.fetch(query, parties) == []
        # Off, the numbers are ordinary: an operator's own row for one is left alone.
        await db.execute("INSERT INTO contacts (party, email) VALUES ($1, 'own@example.no')", parties[0])
        await sync_registry(services.pool, enabled=False)
        assert (
            await db.fetchval("SELECT email FROM contacts WHERE party = $1", parties[0]) == "own@example.no"
        )
    finally:
        await sync_registry(services.pool, enabled=True)
    rows = await db.fetch(query, parties)
    assert [r["party"] for r in rows] == sorted(parties)
    assert {r["party"] for r in rows if r["reserved"]} == {sandbox.PERSON + RESERVED_PERSON}


async def test_with_the_sandbox_off_its_addresses_are_ordinary_addresses(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    notifier: Notifier,  # noqa: F811
    smtp: SmtpServer,  # noqa: F811
    gateway: GatewayReceiver,  # noqa: F811
) -> None:
    svc = await notifier(sandbox=False)
    statuses, _, _ = await run(client, sender, db, svc, to_address(sandbox.EMAIL_PERMANENT_FAILURE), "email")
    assert statuses[0] == "Email_Succeeded"  # the test mail server accepts it like any other
    assert len(smtp.messages(sandbox.EMAIL_PERMANENT_FAILURE)) == 1
    statuses, _, _ = await run(client, sender, db, svc, to_mobile(sandbox.SMS_PERMANENT_FAILURE), "sms")
    assert statuses[0] == "SMS_Accepted" and len(gateway.to(sandbox.SMS_PERMANENT_FAILURE)) == 1


def test_the_sandbox_is_on_in_development_and_only_by_choice_in_production(tmp_path: Any) -> None:
    issuer = TrustedIssuer(issuer="https://issuer.example/", jwks_url="https://issuer.example/jwks")
    production: dict[str, Any] = {
        "mode": "production",
        "trusted_issuers": [issuer],
        "malware_scan": "off",
        "metrics_enabled": False,
        "data_dir": tmp_path,
    }
    assert Settings(mode="development", data_dir=tmp_path).sandbox_enabled
    assert not Settings(mode="development", data_dir=tmp_path, sandbox=False).sandbox_enabled
    assert not Settings(**production).sandbox_enabled
    on = Settings(**production, sandbox=True)
    assert on.sandbox_enabled
    assert isinstance(open_email_sender(on), SandboxEmailSender)
    assert isinstance(open_sms_gateway(on), SandboxSmsGateway)
    assert not isinstance(open_email_sender(Settings(**production)), SandboxEmailSender)


# --- the table, served -------------------------------------------------------------------------------


async def test_the_sandbox_table_is_served_to_any_caller_with_a_token(
    client: httpx.AsyncClient, dev_issuer: DevIssuer, sender: Sender
) -> None:
    person = dev_issuer.mint(scope="altinn:correspondence.read", pid=builders.national_id())
    for headers in (sender.headers, {"Authorization": f"Bearer {person}"}):
        response = await client.get(SANDBOX, headers=headers)
        assert response.status_code == 200, response.text
        table = response.json()
        assert table["enabled"] is True
        assert [e["address"] for e in table["emails"]] == list(sandbox.EMAILS)
        assert [m["address"] for m in table["mobiles"]] == list(sandbox.MOBILES)
        assert {p["recipient"] for p in table["parties"]} == {p.urn for p in sandbox.PARTIES}
    assert (await client.get(SANDBOX)).status_code == 401
    nobody = dev_issuer.mint(scope="openid", org=builders.org_number())
    assert (await client.get(SANDBOX, headers={"Authorization": f"Bearer {nobody}"})).status_code == 403
