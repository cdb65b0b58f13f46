"""Archive (listed by the OpenAPI document; the reference no longer writes it).

Our decision: the recipient files the correspondence away. It records `Archived` (the current
status until a later action), stays visible and searchable (filter `status=Archived`), and follows
the purge rule that a correspondence needing confirmation must be confirmed first (1026).
Archiving again is a no-op that answers 200.
"""

from __future__ import annotations

import uuid

import asyncpg

from correspondence.auth.caller import Caller
from correspondence.correspondence import errors
from correspondence.correspondence import repository as repo
from correspondence.correspondence.use_cases.access import resolve
from correspondence.events import outbox
from correspondence.kit import clock


async def archive(*, pool: asyncpg.Pool, caller: Caller, correspondence_id: uuid.UUID) -> uuid.UUID:
    async with pool.acquire() as conn, conn.transaction():
        access = await resolve(conn, caller, correspondence_id, allow=("recipient",), lock=True)
        if access.purged or not access.available_to_recipient:
            raise errors.NOT_FOUND()
        if access.status == repo.ARCHIVED:
            return correspondence_id
        if access.row["is_confirmation_needed"] and access.row["confirmed_at"] is None:
            raise errors.CONFIRMATION_REQUIRED()
        await repo.append_statuses(
            conn, [correspondence_id], [repo.ARCHIVED], ["Archived"], clock.now(), access.party
        )
        await outbox.record(conn, "correspondencearchived", [correspondence_id])
    return correspondence_id
