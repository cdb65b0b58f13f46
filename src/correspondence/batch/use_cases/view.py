"""Reading batches: one (poll progress) or the owner's list; and the access rule every batch
operation shares: the service owner that created it, acting as a sender."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from correspondence.auth.caller import Caller
from correspondence.batch import errors
from correspondence.batch import repository as repo
from correspondence.batch.schemas import STATUS_NAMES
from correspondence.correspondence import errors as correspondence_errors
from correspondence.kit.text import strip_resource_prefix
from correspondence.registry.cache import ResourceCache


def to_wire(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "resourceId": row["resource_id"],
        "sendersReference": row["senders_reference"],
        "status": STATUS_NAMES[row["status"]],
        "counts": {
            "pages": row["pages"],
            "recipients": row["recipients"],
            "created": row["created_count"],
            "published": row["published_count"],
            "failed": row["failed_count"],
            "purged": row["purged_count"],
            "notified": row["notified_count"],
            "notificationFailed": row["notify_failed_count"],
        },
        "created": row["created"],
        "committed": row["committed"],
        "completed": row["completed"],
        "cancelled": row["cancelled"],
    }


async def owned_batch(
    conn: asyncpg.Connection | asyncpg.Pool, caller: Caller, batch_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record:
    """The batch, when the caller's organisation owns it: 404 when there is none, 403 when another
    service owner's (as a correspondence of another owner's is, DESIGN decision 6)."""
    row = await repo.get_batch(conn, batch_id, lock=lock)
    if row is None:
        raise errors.NOT_FOUND()
    if caller.org is None or caller.org != row["owner_org"]:
        raise correspondence_errors.NO_ACCESS()
    return row


async def get_batch(*, pool: asyncpg.Pool, caller: Caller, batch_id: uuid.UUID) -> dict[str, Any]:
    return to_wire(await owned_batch(pool, caller, batch_id))


async def list_batches(
    *,
    pool: asyncpg.Pool,
    resources: ResourceCache,
    caller: Caller,
    resource_id: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """The caller's batches, newest first; of one resource when given (which it must own)."""
    if caller.org is None:
        raise correspondence_errors.NO_ACCESS()
    rid = strip_resource_prefix(resource_id) if resource_id else None
    if rid is not None:
        resource = await resources.get(pool, rid)
        if resource is None:
            raise correspondence_errors.RESOURCE_UNKNOWN()
        if resource.owner_org != caller.org:
            raise correspondence_errors.NO_ACCESS()
    rows = await repo.list_batches(pool, caller.org, rid, limit=limit, offset=offset)
    return {"batches": [to_wire(r) for r in rows]}
