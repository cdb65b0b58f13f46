"""Search (api.md §3.3, §9), with real paging (DESIGN decision 5): a stable newest-first order
(requestedPublishTime, then id), `offset`/`limit` honoured, and the total in `pagination`.
`resourceId` and `role` are required; `status` finds those that have had that status at some time
(a Published filter finds read and confirmed ones too), not those whose current status it is.

The recipient half lists only what the caller could open (use_cases/access.py): published, the
resource's minimum authentication level met, confidential correspondence only with a delegation
that includes it. The sender half needs the sender policy's scopes."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from correspondence.auth.caller import Caller
from correspondence.correspondence import errors
from correspondence.correspondence import repository as repo
from correspondence.correspondence.use_cases.access import (
    Acting,
    acting_for,
    caller_party,
    is_owner_acting_as_sender,
    reads_as_recipient,
)
from correspondence.kit.text import ORG_URN
from correspondence.registry.cache import ResourceCache

MAX_LIMIT = 1000
# Hidden from a recipient's lists: not yet published, failed, or purged.
HIDDEN_FROM_RECIPIENT = (0, 1, 11, 7, 8)
# A recipient asking for these finds nothing (api.md §9): what it may see has moved past them, or failed.
NEVER_LISTED_FOR_RECIPIENT = (0, 1, 11)


@dataclass(frozen=True)
class SearchQuery:
    role: str  # Recipient | Sender | RecipientAndSender
    resource_id: str
    from_time: datetime | None = None
    to_time: datetime | None = None
    status: int | None = None
    on_behalf_of: str | None = None  # a party URN
    offset: int = 0
    limit: int = MAX_LIMIT
    senders_reference: str | None = None
    idempotent_key: uuid.UUID | None = None


async def search_correspondences(
    *, pool: asyncpg.Pool, resources: ResourceCache, caller: Caller, query: SearchQuery
) -> dict[str, Any]:
    if query.offset < 0 or query.limit < 0:
        raise errors.NEGATIVE_PAGING()
    limit = min(query.limit or MAX_LIMIT, MAX_LIMIT)
    if query.from_time and query.to_time and query.from_time > query.to_time:
        raise errors.FROM_AFTER_TO()
    party = query.on_behalf_of or caller_party(caller)
    if party is None:
        raise errors.CALLER_UNKNOWN()
    acting = await acting_for(pool, caller, party)
    if acting is None:
        raise errors.NO_ACCESS()
    plan = await _plan(pool, resources, caller, query, party, acting)
    # A search names its resource, whose level _plan has checked; only the idempotentKey short-cut
    # looks across resources, so only it leaves out those above the caller's level.
    across = plan.as_recipient and query.idempotent_key is not None
    restricted = await resources.above_level(pool, caller.auth_level) if across else []
    ids, total, seen = await _run(pool, query, party, plan, restricted, limit)
    if across and await resources.learn(pool, seen):
        # A resource registered after the levels were read: search again if it is one to leave out.
        again = await resources.above_level(pool, caller.auth_level)
        if again != restricted:
            ids, total, _ = await _run(pool, query, party, plan, again, limit)
    return _page(ids, total, query.offset, limit)


@dataclass(frozen=True, slots=True)
class _Plan:
    as_sender: bool  # list what the party sent (the caller owns it and calls as sender)
    as_recipient: bool  # list what the party received
    hide_confidential: bool  # a person whose delegation does not include confidential post


async def _plan(
    pool: asyncpg.Pool,
    resources: ResourceCache,
    caller: Caller,
    query: SearchQuery,
    party: str,
    acting: Acting,
) -> _Plan:
    """Which halves of the search this caller gets. The sender half needs the sender policy (403 for
    an explicit role=Sender without it), the recipient half the read scope; an idempotentKey looks
    in both halves the caller may see, whatever the role (api.md §9)."""
    if query.role == "Sender" and not caller.is_sender:
        raise errors.NO_ACCESS()
    if query.role == "Recipient" and not reads_as_recipient(caller):
        raise errors.NO_ACCESS()
    any_role = query.idempotent_key is not None
    owner = party[len(ORG_URN) :] if party.startswith(ORG_URN) else None
    as_sender = (any_role or query.role != "Recipient") and owner is not None
    as_sender = as_sender and is_owner_acting_as_sender(caller, owner or "")
    as_recipient = (any_role or query.role != "Sender") and reads_as_recipient(caller)
    if as_recipient:
        resource = await resources.get(pool, query.resource_id)
        if resource is not None and resource.min_auth_level > caller.auth_level:
            # Named, and the caller's level is too low to read it as recipient (api.md §2.4).
            if not (as_sender and resource.owner_org == owner):
                raise errors.NO_ACCESS()
            as_recipient = False
    return _Plan(as_sender, as_recipient, acting.delegated and not acting.confidential)


async def _run(
    pool: asyncpg.Pool, query: SearchQuery, party: str, plan: _Plan, restricted: list[str], limit: int
) -> tuple[list[uuid.UUID], int, set[str]]:
    branches: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    filters = ""
    if query.idempotent_key is not None:
        # Short-circuit (api.md §9): no other filter, but the same access rules.
        filters += f" AND idempotent_key = {arg(query.idempotent_key)}"
    else:
        filters += f" AND resource_id = {arg(query.resource_id)}"
        if query.from_time is not None:
            filters += f" AND requested_publish_time > {arg(query.from_time)}"
        if query.to_time is not None:
            filters += f" AND requested_publish_time < {arg(query.to_time)}"
        if query.status is not None:
            # Has had that status, not the current one (api.md §9): one index probe per row
            # (correspondence_statuses_by_correspondence is on (correspondence_id, status)), or
            # a history row Initialize did not store (repository._HISTORY).
            status = arg(query.status)
            had = (
                "EXISTS (SELECT 1 FROM correspondence_statuses s"
                f" WHERE s.correspondence_id = correspondences.id AND s.status = {status})"
            )
            if query.status in repo.IMPLIED_STATUSES:
                had = f"({had} OR {repo.implied_status('correspondences', status + '::smallint')})"
            filters += f" AND {had}"
        if query.senders_reference is not None:
            filters += f" AND senders_reference = {arg(query.senders_reference)}"
    listed = query.idempotent_key is not None or query.status not in NEVER_LISTED_FOR_RECIPIENT
    if plan.as_recipient and listed:
        hidden = ", ".join(str(s) for s in HIDDEN_FROM_RECIPIENT)
        recipient = f"recipient = {arg(party)} AND status NOT IN ({hidden}){filters}"
        if restricted:
            recipient += f" AND resource_id <> ALL({arg(restricted)}::text[])"
        if plan.hide_confidential:
            recipient += " AND NOT is_confidential"
        branches.append(recipient)
    if plan.as_sender:
        branches.append(f"service_owner_id = {arg(party[len(ORG_URN) :])}{filters}")
    if not branches:
        return [], 0, set()
    return await repo.search_ids(pool, branches, args, query.offset, limit)


def _page(ids: list[uuid.UUID], total: int, offset: int, limit: int) -> dict[str, Any]:
    return {
        "ids": [str(i) for i in ids],
        "pagination": {
            "totalItems": total,
            "page": offset // limit + 1 if limit else 1,
            "pages": math.ceil(total / limit) if limit else 0,
        },
    }
