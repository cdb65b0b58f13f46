"""The sender's view of one correspondence: overview and details (api.md §3.4, §3.5)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from correspondence.auth.caller import Caller
from correspondence.correspondence import errors
from correspondence.correspondence import repository as repo
from correspondence.correspondence.schemas import CHANNEL_NAMES, STATUS_NAMES

_PURGED = (repo.PURGED_BY_RECIPIENT, repo.PURGED_BY_ALTINN)
_NOT_CURRENT = (repo.FETCHED, repo.ATTACHMENTS_DOWNLOADED)
_HIDDEN_FROM_SENDER = (repo.PURGED_BY_RECIPIENT, repo.PURGED_BY_ALTINN, 9)
_PROCESSING = {
    "Registered": "Order has been registered and is awaiting processing.",
}


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def current_status(history: list[repo.StatusRow]) -> repo.StatusRow:
    """The latest lifecycle status (DESIGN decision 3): Fetched and AttachmentsDownloaded never
    replace it, and a purge is terminal."""
    purged = [s for s in history if s.status in _PURGED]
    if purged:
        return purged[0]
    lifecycle = [s for s in history if s.status not in _NOT_CURRENT]
    return lifecycle[-1]


async def _load_for_sender(pool: asyncpg.Pool, caller: Caller, cid: uuid.UUID) -> asyncpg.Record:
    row = await repo.get_correspondence(pool, cid)
    if row is None:
        raise errors.NOT_FOUND()
    if caller.org is None or caller.org != row["service_owner_id"]:
        raise errors.NO_ACCESS()
    return row


RECIPIENT_NAME = "{{recipientName}}"


async def _content(pool: asyncpg.Pool, row: asyncpg.Record, published: bool) -> dict[str, Any]:
    if published:
        # After publication the sender gets a placeholder, as the reference does (api.md §3.4).
        return {
            "language": "no",
            "messageTitle": "",
            "messageSummary": "",
            "messageBody": "",
            "attachments": [],
        }
    texts = [row["message_title"], row["message_summary"], row["message_body"]]
    if any(RECIPIENT_NAME in t for t in texts):
        # One content row serves every recipient of a request: the name is put in when read.
        recipient = row["recipient"]
        name = await repo.get_party_name(pool, recipient) or recipient.rsplit(":", 1)[-1]
        texts = [t.replace(RECIPIENT_NAME, name) for t in texts]
    return {
        "language": row["language"],
        "messageTitle": texts[0],
        "messageSummary": texts[1],
        "messageBody": texts[2],
        "attachments": [],
    }


async def _common(pool: asyncpg.Pool, row: asyncpg.Record, history: list[repo.StatusRow]) -> dict[str, Any]:
    current = current_status(history)
    published = any(s.status == repo.PUBLISHED for s in history)
    return {
        "correspondenceId": str(row["id"]),
        "resourceId": row["resource_id"],
        "sender": row["sender"],
        "sendersReference": row["senders_reference"],
        "messageSender": row["message_sender"] or "",
        "recipient": row["recipient"],
        "content": await _content(pool, row, published),
        "created": iso(row["created"]),
        "requestedPublishTime": iso(row["requested_publish_time"]),
        "allowSystemDeleteAfter": None,
        "dueDateTime": iso(row["due_date_time"]),
        "published": iso(row["published"]),
        "status": STATUS_NAMES[current.status],
        "statusText": current.status_text,
        "statusChanged": iso(current.status_changed),
        "externalReferences": orjson.loads(row["external_references"]),
        "propertyList": orjson.loads(row["property_list"]),
        "replyOptions": orjson.loads(row["reply_options"]),
        "notification": None,
        "ignoreReservation": bool(row["ignore_reservation"]),
        "isConfirmationNeeded": row["is_confirmation_needed"],
    }


async def get_overview(*, pool: asyncpg.Pool, caller: Caller, correspondence_id: uuid.UUID) -> dict[str, Any]:
    row = await _load_for_sender(pool, caller, correspondence_id)
    history = await repo.get_status_history(pool, correspondence_id)
    if any(s.status in _PURGED for s in history):
        raise errors.NOT_FOUND()
    orders = await repo.get_notification_orders(pool, correspondence_id)
    body = await _common(pool, row, history)
    body["notifications"] = [
        {"notificationOrderId": str(o["id"]), "isReminder": o["is_reminder"]} for o in orders
    ]
    return body


async def get_details(*, pool: asyncpg.Pool, caller: Caller, correspondence_id: uuid.UUID) -> dict[str, Any]:
    row = await _load_for_sender(pool, caller, correspondence_id)
    history = await repo.get_status_history(pool, correspondence_id)
    orders = await repo.get_notification_orders(pool, correspondence_id)
    body = await _common(pool, row, history)
    body["notifications"] = [_notification(o, row) for o in orders]
    body["statusHistory"] = [
        {
            "status": STATUS_NAMES[s.status],
            "statusText": s.status_text,
            "statusChanged": iso(s.status_changed),
        }
        for s in history
        if s.status not in _HIDDEN_FROM_SENDER
    ]
    return body


def _notification(order: asyncpg.Record, row: asyncpg.Record) -> dict[str, Any]:
    status = order["processing_status"]
    recipient = order["recipient"]
    bare = recipient.rsplit(":", 1)[-1]
    who = {
        "emailAddress": order["email_address"],
        "mobileNumber": order["mobile_number"],
        "organizationNumber": bare if recipient.startswith("urn:altinn:organization:") else None,
        "nationalIdentityNumber": bare if recipient.startswith("urn:altinn:person:identifier-no:") else None,
        "isReserved": None,
    }
    details: dict[str, Any] = {}
    sent_status = {"status": "New", "description": "Awaiting sending", "lastUpdate": iso(order["created"])}
    if order["email_address"]:
        details["email"] = {
            "id": str(order["id"]),
            "succeeded": False,
            "recipient": who,
            "sendStatus": {**sent_status, "status": "Email_New"},
        }
    if order["mobile_number"]:
        details["sms"] = {
            "id": str(order["id"]),
            "succeeded": False,
            "recipient": who,
            "sendStatus": {**sent_status, "status": "SMS_New"},
        }
    return {
        "id": str(order["id"]),
        "sendersReference": f"corr-{row['senders_reference']}",
        "requestedSendTime": iso(order["requested_send_time"]),
        "creator": row["service_owner_id"],
        "created": iso(order["created"]),
        "isReminder": order["is_reminder"],
        "notificationChannel": CHANNEL_NAMES[order["channel"]],
        "ignoreReservation": row["ignore_reservation"],
        "resourceId": row["resource_id"],
        "processingStatus": {
            "status": status,
            "description": _PROCESSING.get(status),
            "lastUpdate": iso(order["created"]),
        },
        "notificationStatusDetails": details,
    }
