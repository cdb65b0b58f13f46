"""Process notification orders at their send time: check the send condition (behaviour.md §5.6),
work out every address to notify with its words, and queue the sending. Sending itself is
`deliver.py`: the addresses are stored first, so each is sent at most once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from correspondence.correspondence.schemas import CHANNEL_NAMES
from correspondence.events import outbox
from correspondence.kit.ids import new_id
from correspondence.kit.numbers import is_ascii_digits
from correspondence.notification import repository as repo
from correspondence.notification import statuses as st
from correspondence.notification.condition import send_condition_met
from correspondence.notification.texts import Texts, correspondence_tokens, order_texts, title_case
from correspondence.notification.use_cases.deliver import SmsWindow, finish_orders

ORG = "urn:altinn:organization:identifier-no:"
PERSON = "urn:altinn:person:identifier-no:"
_NAME = "$recipientName$"  # per address: we are the Notifications service too


@dataclass(frozen=True, slots=True)
class Target:
    """Someone to notify: a party (its contact points looked up now, as Notifications does in
    KRR at send time) or an address the sender gave directly."""

    identifier: str  # the party's number, or the address itself
    recipient: dict[str, Any]  # NotificationRecipientExt, as details show it
    email: str | None
    mobile: str | None
    reserved: bool  # reserved and the correspondence does not ignore reservation
    name: str  # for $recipientName$
    direct: bool = False


def condition_met(row: asyncpg.Record) -> bool:
    """The rule the condition endpoints answer with (condition.py), on the order's row."""
    return send_condition_met(repo.send_state_of(row), reminder=row["is_reminder"])


def normalise_mobile(value: str) -> str:
    """As the reference does for its de-duplication: no spaces, 00 → +, Norwegian 8-digit
    mobiles (4xxxxxxx, 9xxxxxxx) get +47."""
    v = value.replace(" ", "")
    if v.startswith("00"):
        v = "+" + v[2:]
    if len(v) == 8 and is_ascii_digits(v) and v[0] in "49":
        v = "+47" + v
    return v


def _party_target(party: str, contacts: dict[str, asyncpg.Record], ignore_reservation: bool) -> Target:
    contact = contacts.get(party)
    number = party.rsplit(":", 1)[-1]
    person = party.startswith(PERSON)
    reserved = bool(person and contact is not None and contact["reserved"])
    name = contact["name"] if contact is not None and contact["name"] else None
    return Target(
        identifier=number,
        recipient={
            "emailAddress": None,
            "mobileNumber": None,
            "organizationNumber": None if person else number,
            "nationalIdentityNumber": number if person else None,
            "isReserved": reserved if person else None,
        },
        email=contact["email"] if contact is not None else None,
        mobile=normalise_mobile(contact["mobile"]) if contact is not None and contact["mobile"] else None,
        reserved=reserved and not ignore_reservation,
        name=title_case(name) if name else number,
    )


def _targets(
    row: asyncpg.Record, request: dict[str, Any], contacts: dict[str, asyncpg.Record]
) -> list[Target]:
    ignore = bool(row["ignore_reservation"])
    out: list[Target] = []
    if not request.get("overrideRegisteredContactInformation"):
        out.append(_party_target(row["recipient"], contacts, ignore))
    for custom in request.get("customRecipients") or []:
        if custom.get("organizationNumber"):
            out.append(_party_target(ORG + custom["organizationNumber"], contacts, ignore))
        elif custom.get("nationalIdentityNumber"):
            out.append(_party_target(PERSON + custom["nationalIdentityNumber"], contacts, ignore))
        elif custom.get("emailAddress"):
            address = custom["emailAddress"]
            who = {**_EMPTY, "emailAddress": address}
            out.append(Target(address, who, address, None, False, "", direct=True))
        elif custom.get("mobileNumber"):
            number = normalise_mobile(custom["mobileNumber"])
            who = {**_EMPTY, "mobileNumber": number}
            out.append(Target(number, who, None, number, False, "", direct=True))
    return out


_EMPTY: dict[str, Any] = {
    "emailAddress": None,
    "mobileNumber": None,
    "organizationNumber": None,
    "nationalIdentityNumber": None,
    "isReserved": None,
}


def routes(target: Target, channel: str) -> list[tuple[str, str, str]]:
    """(channel, address, status) for one target under the order's channel (api.md §7.4)."""
    E, S = st.EMAIL, st.SMS
    if target.direct:  # the sender named the address: its kind decides the channel
        return [(E, target.email, st.EMAIL_NEW)] if target.email else [(S, target.mobile or "", st.SMS_NEW)]
    primary = S if channel in ("Sms", "SmsPreferred") else E
    if target.reserved:
        return [(primary, target.identifier, st.RESERVED[primary])]
    email = [(E, target.email, st.EMAIL_NEW)] if target.email else []
    sms = [(S, target.mobile, st.SMS_NEW)] if target.mobile else []
    chosen = {
        "Email": email,
        "Sms": sms,
        "EmailPreferred": email or sms,
        "SmsPreferred": sms or email,
        "EmailAndSms": email + sms,
    }.get(channel, email)
    return chosen or [(primary, target.identifier, st.NOT_IDENTIFIED[primary])]


def plan_order(
    row: asyncpg.Record,
    request: dict[str, Any],
    contacts: dict[str, asyncpg.Record],
    *,
    now: datetime,
    window: SmsWindow,
) -> list[tuple[Any, ...]]:
    """The delivery rows of one order, one per (channel, address)."""
    texts: Texts = order_texts(
        request, template=row["template"], language=row["language"], reminder=row["is_reminder"]
    ).replace(
        correspondence_tokens(
            message_sender=row["message_sender"],
            sender=row["sender"],
            sender_name=row["sender_name"],
            recipient=row["recipient"],
            recipient_name=row["recipient_name"],
            resource_title=row["resource_title"],
            resource_id=row["resource_id"],
            message_title=row["message_title"],
        )
    )
    channel = CHANNEL_NAMES[row["channel"]]
    out: list[tuple[Any, ...]] = []
    seen: set[tuple[str, str]] = set()
    for target in _targets(row, request, contacts):
        for kind, address, status in routes(target, channel):
            if (kind, address) in seen:
                continue
            seen.add((kind, address))
            subject = texts.email_subject.replace(_NAME, target.name) if kind == st.EMAIL else None
            body = (texts.email_body if kind == st.EMAIL else texts.sms_body).replace(_NAME, target.name)
            error = None
            if status == st.NEW[kind] and (
                not body.strip() or (kind == st.EMAIL and not (subject or "").strip())
            ):
                status, error = (
                    st.FAILED[kind],
                    f"The order has no {'e-mail' if kind == st.EMAIL else 'SMS'} text.",
                )
            who = dict(target.recipient)
            if status == st.NEW[kind]:
                who["emailAddress" if kind == st.EMAIL else "mobileNumber"] = address
            due = window.next(now) if kind == st.SMS and status == st.SMS_NEW else now
            out.append(
                (
                    new_id(),
                    row["id"],
                    row["correspondence_id"],
                    kind,
                    address,
                    orjson.dumps(who).decode(),
                    subject,
                    body,
                    texts.html,
                    status,
                    due,
                    error,
                )
            )
    return out


async def process_orders(
    conn: asyncpg.Connection, order_ids: list[uuid.UUID], *, now: datetime, window: SmsWindow
) -> None:
    # Orders of a paused resource stay Registered: resuming it enqueues them again (recall/).
    rows = [r for r in await repo.lock_orders(conn, order_ids) if not r["paused"]]
    if not rows:
        return  # processed already (a re-run), never published, or paused
    going = [r for r in rows if condition_met(r)]
    stopped = [r["id"] for r in rows if not condition_met(r)]
    requests: dict[str, dict[str, Any]] = {}
    parties: set[str] = set()
    for r in going:
        request = requests.setdefault(r["request"] or "{}", orjson.loads(r["request"] or "{}"))
        if not request.get("overrideRegisteredContactInformation"):
            parties.add(r["recipient"])
        for custom in request.get("customRecipients") or []:
            if custom.get("organizationNumber"):
                parties.add(ORG + custom["organizationNumber"])
            elif custom.get("nationalIdentityNumber"):
                parties.add(PERSON + custom["nationalIdentityNumber"])
    contacts = await repo.contacts(conn, sorted(parties)) if parties else {}
    deliveries: list[tuple[Any, ...]] = []
    for r in going:
        deliveries.extend(plan_order(r, requests[r["request"] or "{}"], contacts, now=now, window=window))
    going_ids = [r["id"] for r in going]
    await repo.insert_deliveries(conn, deliveries, now)
    await repo.set_order_status(conn, stopped, st.CONDITION_NOT_MET, now)
    await repo.set_order_status(conn, going_ids, st.PROCESSING, now)
    await outbox.record(conn, "notificationcreated", going_ids)
    if going_ids:
        await repo.enqueue_deliveries(conn, going_ids, now)
        await finish_orders(conn, going_ids, now)  # an order with nothing left to send is done now
