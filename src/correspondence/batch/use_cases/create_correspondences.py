"""The worker's side of a committed batch: its correspondences, created a chunk at a time by
Initialize itself, so they are ordinary correspondences on every endpoint (statuses, notification
orders, publish jobs, events).

Each chunk is one Initialize with an idempotency key derived from the chunk's first recipient. The
job that makes it runs with the batch row locked, and records the ids it got in its own
transaction; if the worker dies between Initialize's commit and its own, the chunk runs again with
the same recipients and key, and Initialize answers with the correspondences it already made: no
recipient ever gets two."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta

import asyncpg

from correspondence.auth import scopes
from correspondence.auth.caller import Caller
from correspondence.batch import repository as repo
from correspondence.batch.schemas import COMMITTED, InitializeBatchExt
from correspondence.batch.use_cases.create import initialize_request
from correspondence.correspondence.use_cases.initialize import initialize_correspondences
from correspondence.kit.errors import ApiError, ValidationProblem
from correspondence.limits.use_cases.notification_cap import NotificationCap
from correspondence.notification.rules import InvalidTemplate
from correspondence.registry.cache import ResourceCache

_KEYS = uuid.UUID("0c7f5b8e-4d0a-4f55-9a51-b47c5e1a0017")  # namespace of the chunks' idempotency keys


def chunk_key(batch_id: uuid.UUID, page: int, position: int) -> uuid.UUID:
    return uuid.uuid5(_KEYS, f"{batch_id}/{page}/{position}")


def _sender(owner_org: str) -> Caller:
    """The batch's owner, as the sender it was when it created the batch."""
    return Caller(
        issuer="batch",
        kind="altinn",
        scopes=frozenset({scopes.WRITE}),
        org=owner_org,
        pid=None,
        expires=math.inf,
    )


async def create_next_chunk(
    conn: asyncpg.Connection,
    *,
    pool: asyncpg.Pool,
    resources: ResourceCache,
    batch_id: uuid.UUID,
    chunk_size: int,
    reminder_delay: timedelta,
    notification_cap: NotificationCap | None = None,
) -> bool:
    """Create the next chunk of the batch's correspondences; True when more remain. Past the
    owner's daily notification cap (if any), a chunk is not created: failed with 9430's message."""
    batch = await repo.get_batch(conn, batch_id, lock=True)
    if batch is None or batch["status"] != COMMITTED:
        return False
    rows = await repo.next_recipients(conn, batch_id, chunk_size + 2)
    if not rows:
        return False
    # Never leave one recipient for a chunk of its own: Initialize treats one recipient differently
    # (a reserved one is refused instead of created Reserved).
    take = rows if len(rows) <= chunk_size + 1 else rows[:chunk_size]
    more = len(rows) > len(take)
    pages = [r["page"] for r in take]
    positions = [r["position"] for r in take]
    stored = InitializeBatchExt.model_validate_json(await repo.get_request(conn, batch_id))
    request = initialize_request(
        stored, [r["recipient"] for r in take], chunk_key(batch_id, pages[0], positions[0])
    )
    try:
        result = await initialize_correspondences(
            pool=pool,
            resources=resources,
            caller=_sender(batch["owner_org"]),
            request=request,
            reminder_delay=reminder_delay,
            notification_cap=notification_cap,
        )
    except ApiError as exc:  # e.g. the due date passed before commit, the resource changed owner
        await repo.record_not_created(conn, batch_id, pages, positions, f"{exc.code}: {exc.message}")
        return more
    except ValidationProblem as exc:
        reason = "; ".join(f"{e.key}: {e.message}" for e in exc.errors)
        await repo.record_not_created(conn, batch_id, pages, positions, reason)
        return more
    except InvalidTemplate:
        await repo.record_not_created(conn, batch_id, pages, positions, "Invalid notification template text")
        return more
    ids = [uuid.UUID(item["correspondenceId"]) for item in result.body["correspondences"]]
    await repo.record_created(conn, batch_id, pages, positions, ids)
    return more
