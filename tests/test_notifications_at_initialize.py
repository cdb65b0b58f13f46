"""Notification orders at Initialize: validation (3xxx), contact resolution and reservation."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.registry import repository as registry
from tests import builders
from tests.conftest import INITIALIZE, Sender


async def post(
    client: httpx.AsyncClient, sender: Sender, recipients: list[str], note: dict[str, Any] | None, **kw: Any
) -> httpx.Response:
    body = builders.initialize_body(sender.resource_id, recipients, notification_block=note, **kw)
    return await client.post(INITIALIZE, json=body, headers=sender.headers)


async def contact(
    db: asyncpg.Connection,
    party: str,
    email: str | None = None,
    mobile: str | None = None,
    reserved: bool = False,
) -> None:
    await registry.set_contact(db, party=party, email=email, mobile=mobile, reserved=reserved)


def person_urn(pid: str) -> str:
    return f"urn:altinn:person:identifier-no:{pid}"


EMPTY = {
    "emailSubject": None,
    "emailBody": None,
    "smsBody": None,
    "reminderEmailSubject": None,
    "reminderEmailBody": None,
    "reminderSmsBody": None,
}

TEXT_CASES = [
    ("3002 email", {**EMPTY, "notificationChannel": "Email", "sendReminder": False}, 3002),
    (
        "3003 reminder email",
        {**EMPTY, "emailSubject": "s", "emailBody": "b", "notificationChannel": "Email"},
        3003,
    ),
    ("3004 sms", {**EMPTY, "notificationChannel": "Sms", "sendReminder": False}, 3004),
    ("3005 reminder sms", {**EMPTY, "smsBody": "b", "notificationChannel": "Sms"}, 3005),
    (
        "3006 preferred",
        {**EMPTY, "emailSubject": "s", "emailBody": "b", "notificationChannel": "EmailPreferred"},
        3006,
    ),
    (
        "3007 reminder preferred",
        {
            **EMPTY,
            "emailSubject": "s",
            "emailBody": "b",
            "smsBody": "x",
            "notificationChannel": "SmsPreferred",
        },
        3007,
    ),
    ("3024 email and sms", {**EMPTY, "smsBody": "x", "notificationChannel": "EmailAndSms"}, 3024),
    (
        "3025 reminder email and sms",
        {
            **EMPTY,
            "emailSubject": "s",
            "emailBody": "b",
            "smsBody": "x",
            "notificationChannel": "EmailAndSms",
        },
        3025,
    ),
    ("3022 override without custom", {"overrideRegisteredContactInformation": True}, 3022),
    ("3019 custom without id", {"customRecipients": [{}]}, 3019),
    (
        "3018 custom with two ids",
        {"customRecipients": [{"emailAddress": "a@b.no", "mobileNumber": "+4799999999"}]},
        3018,
    ),
    ("3011 custom bad email", {"customRecipients": [{"emailAddress": "not-an-email"}]}, 3011),
    ("3011 custom email with semicolon", {"customRecipients": [{"emailAddress": "a@b.no;c@d.no"}]}, 3011),
    ("3012 custom bad mobile", {"customRecipients": [{"mobileNumber": "12345"}]}, 3012),
    (
        "3015 recipient name with address",
        {"emailBody": "Hei $recipientName$", "customRecipients": [{"emailAddress": "a@b.no"}]},
        3015,
    ),
    ("3001 no template for Altinn2Message", {"notificationTemplate": 2}, 3001),
]


@pytest.mark.parametrize(("name", "changes", "code"), TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
async def test_notification_rules(
    client: httpx.AsyncClient, sender: Sender, name: str, changes: dict[str, Any], code: int
) -> None:
    response = await post(client, sender, [builders.national_id()], builders.notification(**changes))
    assert response.status_code == (404 if code == 3001 else 400), response.text
    assert response.json()["errorCode"] == code


async def test_custom_recipients_need_a_single_correspondence_recipient(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    note = builders.notification(customRecipients=[{"emailAddress": "a@b.no"}])
    response = await post(client, sender, [builders.national_id(), builders.national_id()], note)
    assert response.status_code == 400 and response.json()["errorCode"] == 3017


async def test_generic_template_skips_the_text_rules(client: httpx.AsyncClient, sender: Sender) -> None:
    note = {
        "notificationTemplate": "GenericAltinnMessage",
        "notificationChannel": "EmailAndSms",
        "sendReminder": True,
    }
    response = await post(client, sender, [builders.national_id()], note)
    assert response.status_code == 200, response.text


async def test_orders_report_success_or_missing_contact(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    with_email, with_mobile, without = builders.national_id(), builders.national_id(), builders.national_id()
    await contact(db, person_urn(with_email), email="a@example.no")
    await contact(db, person_urn(with_mobile), mobile="+4799999999")
    note = builders.notification(notificationChannel="Email", reminderNotificationChannel="Sms")
    response = await post(client, sender, [with_email, with_mobile, without], note)
    assert response.status_code == 200, response.text
    results = {i["recipient"]: i["notifications"] for i in response.json()["correspondences"]}
    assert [(n["isReminder"], n["status"]) for n in results[person_urn(with_email)]] == [
        (False, "Success"),
        (True, "MissingContact"),
    ]
    assert [(n["isReminder"], n["status"]) for n in results[person_urn(with_mobile)]] == [
        (False, "MissingContact"),
        (True, "Success"),
    ]
    assert [n["status"] for n in results[person_urn(without)]] == ["MissingContact", "MissingContact"]
    order_id = results[person_urn(with_email)][0]["orderId"]
    row = await db.fetchrow(
        "SELECT email_address, channel, is_reminder FROM notification_orders WHERE id = $1::uuid", order_id
    )
    assert row["email_address"] == "a@example.no" and row["channel"] == 0 and row["is_reminder"] is False


async def test_without_reminder_only_the_main_order_is_created(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    response = await post(client, sender, [builders.national_id()], builders.notification(sendReminder=False))
    assert [n["isReminder"] for n in response.json()["correspondences"][0]["notifications"]] == [False]


async def test_custom_recipients_count_as_reachable(client: httpx.AsyncClient, sender: Sender) -> None:
    note = builders.notification(
        notificationChannel="Email",
        sendReminder=False,
        customRecipients=[{"emailAddress": "case@example.no"}],
        overrideRegisteredContactInformation=True,
    )
    response = await post(client, sender, [builders.national_id()], note)
    assert response.status_code == 200, response.text
    assert response.json()["correspondences"][0]["notifications"][0]["status"] == "Success"


async def test_a_single_reserved_person_is_rejected_with_1030(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    pid = builders.national_id()
    await contact(db, person_urn(pid), email="x@example.no", reserved=True)
    response = await post(client, sender, [pid], builders.notification())
    assert response.status_code == 422
    assert response.json()["errorCode"] == 1030
    assert person_urn(pid) in response.json()["detail"]
    count = await db.fetchval("SELECT count(*) FROM correspondences WHERE recipient = $1", person_urn(pid))
    assert count == 0


async def test_ignore_reservation_overrides_it(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    pid = builders.national_id()
    await contact(db, person_urn(pid), email="x@example.no", reserved=True)
    response = await post(client, sender, [pid], builders.notification(), ignoreReservation=True)
    assert response.status_code == 200, response.text
    assert response.json()["correspondences"][0]["status"] == "ReadyForPublish"


async def test_reserved_person_among_several_gets_status_reserved_and_no_orders(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    reserved, free = builders.national_id(), builders.national_id()
    await contact(db, person_urn(reserved), email="r@example.no", reserved=True)
    response = await post(client, sender, [reserved, free], builders.notification())
    assert response.status_code == 200, response.text
    items = {i["recipient"]: i for i in response.json()["correspondences"]}
    assert items[person_urn(reserved)]["status"] == "Reserved"
    assert items[person_urn(reserved)]["notifications"] == []
    assert items[person_urn(free)]["status"] == "ReadyForPublish"


async def test_reservation_of_an_organisation_number_is_ignored(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    org = builders.org_number()
    await contact(db, f"urn:altinn:organization:identifier-no:{org}", email="post@example.no", reserved=True)
    response = await post(client, sender, [f"0192:{org}"], builders.notification(notificationChannel="Email"))
    assert response.status_code == 200, response.text
