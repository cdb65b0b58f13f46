"""Create a batch: the correspondence to send, checked now exactly as Initialize checks it."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import asyncpg
import orjson

from correspondence.auth.caller import Caller
from correspondence.batch import errors
from correspondence.batch import repository as repo
from correspondence.batch.schemas import InitializeBatchExt
from correspondence.batch.use_cases.view import to_wire
from correspondence.correspondence import errors as correspondence_errors
from correspondence.correspondence.schemas import InitializeCorrespondencesExt
from correspondence.correspondence.use_cases.access import caller_party
from correspondence.correspondence.use_cases.initialize import initialize_correspondences
from correspondence.kit import clock
from correspondence.kit.ids import new_id
from correspondence.kit.text import ORG_URN, strip_resource_prefix
from correspondence.registry.cache import ResourceCache

# Two recipients nobody has: the check runs Initialize's rules for more than one recipient, as
# every chunk of a batch has (a batch cannot name custom notification recipients, say).
_PROBE_RECIPIENTS = [ORG_URN + "000000000", ORG_URN + "000000001"]


@dataclass(frozen=True)
class CreateResult:
    body: dict[str, Any]
    replayed: bool


def stored_request(request: InitializeBatchExt) -> str:
    """What the batch keeps: the correspondence as given (validated), read back by the worker."""
    body = request.model_dump(mode="json", by_alias=True, exclude={"idempotentKey"})
    return orjson.dumps(body).decode()


def initialize_request(
    stored: InitializeBatchExt, recipients: list[str], key: uuid.UUID | None
) -> InitializeCorrespondencesExt:
    """Initialize's request for some of the batch's recipients. Built, not validated: the batch's
    recipients were validated page by page, and a chunk may hold more than Initialize's 500."""
    return InitializeCorrespondencesExt.model_construct(
        correspondence=stored.correspondence,
        recipients=recipients,
        existingAttachments=list(stored.existingAttachments),
        idempotentKey=key,
    )


async def check_as_initialize(
    *,
    pool: asyncpg.Pool,
    resources: ResourceCache,
    caller: Caller,
    request: InitializeBatchExt,
    reminder_delay: timedelta,
) -> None:
    """Run Initialize itself for two placeholder recipients in a transaction that is rolled back:
    every rule Initialize applies (resource, owner, content, dates, notification, attachments) is
    applied to the batch now, by the same code, and nothing is kept."""
    probe = initialize_request(request, _PROBE_RECIPIENTS, None)
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            # Initialize takes a pool; a connection answers the same calls, inside this transaction.
            await initialize_correspondences(
                pool=cast(asyncpg.Pool, conn),
                resources=resources,
                caller=caller,
                request=probe,
                reminder_delay=reminder_delay,
            )
        finally:
            await transaction.rollback()


def _request_hash(request: InitializeBatchExt, resource_id: str) -> bytes:
    canonical = request.model_dump(mode="json", by_alias=True, exclude={"idempotentKey"})
    canonical["correspondence"]["resourceId"] = resource_id
    return hashlib.blake2b(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


async def create_batch(
    *,
    pool: asyncpg.Pool,
    resources: ResourceCache,
    caller: Caller,
    request: InitializeBatchExt,
    reminder_delay: timedelta,
) -> CreateResult:
    resource_id = strip_resource_prefix(request.correspondence.resourceId)
    resource = await resources.get(pool, resource_id)
    if resource is None:
        raise correspondence_errors.RESOURCE_UNKNOWN()
    if caller.org is None or caller.org != resource.owner_org:
        raise correspondence_errors.NO_ACCESS()
    key = request.idempotentKey
    request_hash = _request_hash(request, resource_id) if key is not None else None
    if key is not None:
        replay = await _replay(pool, resource.owner_org, key, request_hash)
        if replay is not None:
            return replay
    await check_as_initialize(
        pool=pool, resources=resources, caller=caller, request=request, reminder_delay=reminder_delay
    )
    async with pool.acquire() as conn, conn.transaction():
        row = await repo.insert_batch(
            conn,
            batch_id=new_id(),
            owner_org=resource.owner_org,
            resource_id=resource_id,
            senders_reference=request.correspondence.sendersReference,
            request=stored_request(request),
            key=key,
            request_hash=request_hash,
            created_by=caller_party(caller),
            at=clock.now(),
        )
    if row is None:  # a concurrent create with the same key won
        assert key is not None
        replay = await _replay(pool, resource.owner_org, key, request_hash)
        if replay is None:
            raise errors.IDEMPOTENT_KEY_USED()
        return replay
    return CreateResult(to_wire(row), replayed=False)


async def _replay(
    pool: asyncpg.Pool, owner_org: str, key: uuid.UUID, request_hash: bytes | None
) -> CreateResult | None:
    """The same key and body → the batch made by the first request; another body → 409."""
    found = await repo.find_by_key(pool, owner_org, key)
    if found is None:
        return None
    if found["request_hash"] is None or bytes(found["request_hash"]) != request_hash:
        raise errors.IDEMPOTENT_KEY_USED()
    return CreateResult(to_wire(found), replayed=True)
