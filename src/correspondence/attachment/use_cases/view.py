"""An attachment as its sender sees it (api.md §3.14, §3.15), and as a correspondence lists it
(§6.11). Only the sender's own organisation may see an attachment (403 otherwise, DESIGN 6)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from correspondence.attachment import errors
from correspondence.attachment import repository as repo
from correspondence.attachment.files import data_type
from correspondence.auth.caller import Caller

_DATA_LOCATIONS = ("AltinnCorrespondenceAttachment", "ExternalStorage")


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def load_for_sender(
    conn: asyncpg.Connection | asyncpg.Pool, caller: Caller, attachment_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record:
    """The attachment, if the caller is the organisation that owns it, calling with the sender
    policy's scopes: 2001, then 4001."""
    row = await repo.get(conn, attachment_id, lock=lock)
    if row is None:
        raise errors.NOT_FOUND()
    if not caller.is_sender or caller.org is None or caller.org != row["service_owner_id"]:
        raise errors.NO_ACCESS()
    return row


def _name(row: asyncpg.Record) -> str:
    return str(row["display_name"] or row["file_name"])


def _checksum(row: asyncpg.Record) -> str:
    """The MD5 given or computed; "" until the bytes are uploaded when none was given (api.md §3.14)."""
    return str(row["checksum"] or "")


def overview(row: asyncpg.Record, correspondence_ids: list[uuid.UUID]) -> dict[str, Any]:
    """AttachmentOverviewExt (api.md §6.9): the official members plus today's `displayName` (null
    when none was given; `name` is the display name falling back to the file name); isEncrypted is
    always false there, as the reference writes it."""
    return {
        "attachmentId": str(row["id"]),
        "resourceId": row["resource_id"],
        "sender": row["sender"],
        "fileName": row["file_name"],
        "name": _name(row),
        "displayName": row["display_name"],
        "isEncrypted": False,
        "checksum": _checksum(row),
        "sendersReference": row["senders_reference"],
        "dataType": data_type(row["file_name"]),
        "status": repo.STATUS_NAMES[row["status"]],
        "statusText": row["status_text"],
        "statusChanged": iso(row["status_changed"]),
        "correspondenceIds": [str(c) for c in correspondence_ids],
    }


async def get_overview(*, pool: asyncpg.Pool, caller: Caller, attachment_id: uuid.UUID) -> dict[str, Any]:
    row = await load_for_sender(pool, caller, attachment_id)
    return overview(row, await repo.correspondence_ids(pool, attachment_id))


async def get_details(*, pool: asyncpg.Pool, caller: Caller, attachment_id: uuid.UUID) -> dict[str, Any]:
    row = await load_for_sender(pool, caller, attachment_id)
    body = overview(row, await repo.correspondence_ids(pool, attachment_id))
    body["displayName"] = _name(row)  # details fall back to the file name (api.md §6.10)
    body["statusHistory"] = [
        {
            "status": repo.STATUS_NAMES[h["status"]],
            "statusText": h["status_text"],
            "statusChanged": iso(h["status_changed"]),
        }
        for h in await repo.history(pool, attachment_id)
    ]
    return body


async def correspondence_attachments(
    conn: asyncpg.Connection | asyncpg.Pool, correspondence_id: uuid.UUID
) -> list[dict[str, Any]]:
    """`content.attachments` of a correspondence (api.md §6.11), in the order it named them.
        `expirationTime` is the link's own expiry; null when the attachment does not expire. Besides
    the official members, today's `displayName` (null when none was given)."""
    return [
        {
            "id": str(row["id"]),
            "fileName": row["file_name"],
            "name": _name(row),
            "displayName": row["display_name"],
            "isEncrypted": row["is_encrypted"],
            "checksum": _checksum(row),
            "sendersReference": row["senders_reference"],
            "dataType": data_type(row["file_name"]),
            "dataLocationType": _DATA_LOCATIONS[row["data_location_type"]],
            "created": iso(row["linked"]),
            "status": repo.STATUS_NAMES[row["status"]],
            "statusText": row["status_text"],
            "statusChanged": iso(row["status_changed"]),
            "expirationTime": iso(row["expiration_time"]),
        }
        for row in await repo.of_correspondence(conn, correspondence_id)
    ]
