"""Pause and resume a resource. While it is paused nothing of it is published, no notification
order of it is processed, no address of it is sent to and no due date of it takes effect: each of
those jobs leaves the resource's rows as they are (the check is one lookup in a table that is
almost always empty). Initialize still accepts: its correspondences wait. Resuming enqueues again
everything that waited, so all that is due proceeds at once; each job re-checks its rows under a
lock and every address is claimed before it is sent, so nothing is lost and nothing is sent twice.

A pause takes effect for the jobs that start after it commits; one already running finishes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from correspondence.auth.caller import Caller
from correspondence.correspondence.use_cases.access import caller_party
from correspondence.events import outbox
from correspondence.kit import clock
from correspondence.kit.ids import new_id
from correspondence.recall import repository as repo
from correspondence.recall.use_cases.resources import owned_resource
from correspondence.registry.cache import ResourceCache
from correspondence.registry.repository import Resource


async def _log(
    conn: asyncpg.Connection, resource: Resource, action: str, party: str | None, now: datetime
) -> None:
    log_id = new_id()
    await repo.log_pause(
        conn,
        log_id=log_id,
        resource_id=resource.resource_id,
        owner_org=resource.owner_org,
        action=action,
        party=party,
        at=now,
    )
    await outbox.record(conn, f"resource{action}", [log_id])


async def pause_resource(
    conn: asyncpg.Connection, resource: Resource, *, party: str | None, now: datetime
) -> bool:
    """In the caller's transaction; True when it was not paused before (then the event
    `resourcepaused`). Pausing a paused resource changes nothing."""
    if not await repo.pause(conn, resource.resource_id, now, party):
        return False
    await _log(conn, resource, "paused", party, now)
    return True


async def resume_resource(
    conn: asyncpg.Connection, resource: Resource, *, party: str | None, now: datetime
) -> int | None:
    """In the caller's transaction; None when it was not paused, else how many jobs were made
    for what waited (then the event `resourceresumed`)."""
    if not await repo.unpause(conn, resource.resource_id):
        return None
    jobs = await repo.release_held(conn, resource.owner_org, resource.resource_id, now)
    await _log(conn, resource, "resumed", party, now)
    return jobs


async def resource_state(
    conn: asyncpg.Connection | asyncpg.Pool, owner_org: str, resource_id: str, now: datetime
) -> dict[str, Any]:
    """As ResourceStateExt."""
    row = await repo.pause_state(conn, resource_id)
    waiting = await repo.waiting_to_publish(conn, owner_org, resource_id, now)
    return {
        "resourceId": resource_id,
        "paused": row is not None,
        "pausedSince": row["paused"].isoformat() if row is not None else None,
        "pausedBy": row["paused_by"] if row is not None else None,
        "waitingToPublish": waiting,
    }


async def set_paused(
    *, pool: asyncpg.Pool, resources: ResourceCache, caller: Caller, resource_id: str, paused: bool
) -> dict[str, Any]:
    """Pause (or resume) the caller's resource; its state afterwards."""
    resource = await owned_resource(pool, resources, caller, resource_id)
    now = clock.now()
    async with pool.acquire() as conn, conn.transaction():
        party = caller_party(caller)
        if paused:
            await pause_resource(conn, resource, party=party, now=now)
        else:
            await resume_resource(conn, resource, party=party, now=now)
        return await resource_state(conn, resource.owner_org, resource.resource_id, now)


async def get_resource_state(
    *, pool: asyncpg.Pool, resources: ResourceCache, caller: Caller, resource_id: str
) -> dict[str, Any]:
    resource = await owned_resource(pool, resources, caller, resource_id)
    return await resource_state(pool, resource.owner_org, resource.resource_id, clock.now())
