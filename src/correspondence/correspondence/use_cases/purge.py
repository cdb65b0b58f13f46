"""Purge by sender (before publication) or by recipient (api.md §3.8)."""

from __future__ import annotations

import uuid

import asyncpg

from correspondence.attachment.use_cases.lifecycle import purge_unused
from correspondence.auth.caller import Caller
from correspondence.correspondence import errors
from correspondence.correspondence import repository as repo
from correspondence.correspondence.use_cases.access import resolve
from correspondence.events import outbox
from correspondence.kit import clock

_SENDER_PURGEABLE = frozenset({repo.INITIALIZED, repo.READY_FOR_PUBLISH, repo.FAILED})


async def purge(*, pool: asyncpg.Pool, caller: Caller, correspondence_id: uuid.UUID) -> uuid.UUID:
    async with pool.acquire() as conn, conn.transaction():
        access = await resolve(conn, caller, correspondence_id, lock=True)
        if access.purged:
            raise errors.ALREADY_PURGED()
        if access.role == "sender":
            if access.status not in _SENDER_PURGEABLE:
                raise errors.SENDER_CANNOT_PURGE_PUBLISHED()
            status, text = repo.PURGED_BY_ALTINN, "PurgedByAltinn"
        else:
            if not access.available_to_recipient:
                raise errors.NOT_FOUND()
            if access.row["is_confirmation_needed"] and access.row["confirmed_at"] is None:
                raise errors.CONFIRMATION_REQUIRED()
            status, text = repo.PURGED_BY_RECIPIENT, "PurgedByRecipient"
        now = clock.now()
        await repo.append_statuses(conn, [correspondence_id], [status], [text], now, access.party)
        await outbox.record(conn, "correspondencepurged", [correspondence_id])
        # Attachments no other live correspondence uses go too, with their bytes (api.md §3.8).
        await purge_unused(conn, [correspondence_id], now)
    return correspondence_id
