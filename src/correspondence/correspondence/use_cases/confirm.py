"""Confirm (api.md §3.7). Synchronous here: Confirmed is stored before the 200 (DESIGN decision 4)."""

from __future__ import annotations

import uuid

import asyncpg

from correspondence.auth.caller import Caller
from correspondence.correspondence import errors
from correspondence.correspondence import repository as repo
from correspondence.correspondence.use_cases.access import resolve
from correspondence.events import outbox
from correspondence.kit import clock


async def confirm(*, pool: asyncpg.Pool, caller: Caller, correspondence_id: uuid.UUID) -> uuid.UUID:
    async with pool.acquire() as conn, conn.transaction():
        access = await resolve(conn, caller, correspondence_id, allow=("recipient",), lock=True)
        if access.purged or not access.available_to_recipient:
            raise errors.NOT_FOUND()
        if not await repo.has_status(conn, correspondence_id, repo.FETCHED):
            raise errors.NOT_FETCHED_BEFORE_CONFIRM()
        if access.row["confirmed_at"] is not None:
            raise errors.ALREADY_CONFIRMED()
        await repo.append_statuses(
            conn, [correspondence_id], [repo.CONFIRMED], ["Confirmed"], clock.now(), access.party
        )
        await outbox.record(conn, "correspondencereceiverconfirmed", [correspondence_id])
    return correspondence_id
