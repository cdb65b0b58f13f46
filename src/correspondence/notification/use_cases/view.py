"""Notification orders in a correspondence's details, shaped as the official document's
`NotificationExt` (api.md §6.7): the order's processing status and, per channel, the most recently
updated address with its send status and all addresses with theirs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from correspondence.correspondence.schemas import CHANNEL_NAMES
from correspondence.notification import repository as repo
from correspondence.notification import statuses as st


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _registered_recipient(order: asyncpg.Record) -> dict[str, Any]:
    """Before processing, the addresses found at Initialize are all there is to show."""
    recipient: str = order["recipient"]
    bare = recipient.rsplit(":", 1)[-1]
    return {
        "emailAddress": order["email_address"],
        "mobileNumber": order["mobile_number"],
        "organizationNumber": bare if recipient.startswith("urn:altinn:organization:") else None,
        "nationalIdentityNumber": bare if recipient.startswith("urn:altinn:person:identifier-no:") else None,
        "isReserved": None,
    }


def _delivery(d: asyncpg.Record) -> dict[str, Any]:
    status: str = d["status"]
    description = st.DESCRIPTIONS.get(status)
    if d["last_error"]:
        description = f"{description} {d['last_error']}" if description else d["last_error"]
    return {
        "id": str(d["id"]),
        "succeeded": status in st.SUCCEEDED,
        "recipient": orjson.loads(d["recipient"]),
        "sendStatus": {"status": status, "description": description, "lastUpdate": _iso(d["updated"])},
    }


def _status_details(order: asyncpg.Record, deliveries: list[asyncpg.Record]) -> dict[str, Any]:
    """Per channel the most recently updated address (`email`, `sms`) and all of them, newest
    first (`emails`, `smses`); null and empty when the channel has none."""
    emails: list[dict[str, Any]] = []
    smses: list[dict[str, Any]] = []
    if deliveries:  # newest first
        for d in deliveries:
            (emails if d["channel"] == st.EMAIL else smses).append(_delivery(d))
    elif order["processing_status"] == st.REGISTERED:
        who = _registered_recipient(order)
        waiting = {"description": "Awaiting sending", "lastUpdate": _iso(order["created"])}
        for found, address, status in (
            (emails, order["email_address"], st.EMAIL_NEW),
            (smses, order["mobile_number"], st.SMS_NEW),
        ):
            if address:
                found.append(
                    {
                        "id": str(order["id"]),
                        "succeeded": False,
                        "recipient": who,
                        "sendStatus": {"status": status, **waiting},
                    }
                )
    return {
        "email": emails[0] if emails else None,
        "sms": smses[0] if smses else None,
        "emails": emails,
        "smses": smses,
    }


async def notification_details(
    conn: asyncpg.Connection | asyncpg.Pool, correspondence: asyncpg.Record, correspondence_id: uuid.UUID
) -> list[dict[str, Any]]:
    orders, deliveries = await repo.orders_with_deliveries(conn, correspondence_id)
    by_order: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for d in deliveries:
        by_order.setdefault(d["order_id"], []).append(d)
    out = []
    for order in orders:
        status = order["processing_status"]
        out.append(
            {
                "id": str(order["id"]),
                "sendersReference": f"corr-{correspondence['senders_reference']}",
                "requestedSendTime": _iso(order["requested_send_time"]),
                "creator": correspondence["service_owner_id"],
                "created": _iso(order["created"]),
                "isReminder": order["is_reminder"],
                "notificationChannel": CHANNEL_NAMES[order["channel"]],
                "ignoreReservation": correspondence["ignore_reservation"],
                "resourceId": correspondence["resource_id"],
                "processingStatus": {
                    "status": status,
                    "description": st.ORDER_DESCRIPTIONS.get(status),
                    "lastUpdate": _iso(order["status_changed"] or order["created"]),
                },
                "notificationStatusDetails": _status_details(order, by_order.get(order["id"], [])),
            }
        )
    return out
