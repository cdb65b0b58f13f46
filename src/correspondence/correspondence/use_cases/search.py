"""Search (api.md §3.3, §9), with real paging (DESIGN decision 5): a stable newest-first order
(requestedPublishTime, then id), `offset`/`limit` honoured, and the total in `pagination`."""

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
from correspondence.correspondence.use_cases.access import caller_party, may_act_for
from correspondence.kit.text import ORG_URN

MAX_LIMIT = 1000
# Hidden from a recipient's lists: not yet published, failed, or purged.
HIDDEN_FROM_RECIPIENT = (0, 1, 11, 7, 8)


@dataclass(frozen=True)
class SearchQuery:
    role: str  # Recipient | Sender | RecipientAndSender
    resource_id: str | None = None
    from_time: datetime | None = None
    to_time: datetime | None = None
    status: int | None = None
    on_behalf_of: str | None = None  # a party URN
    offset: int = 0
    limit: int = MAX_LIMIT
    senders_reference: str | None = None
    idempotent_key: uuid.UUID | None = None


async def search_correspondences(*, pool: asyncpg.Pool, caller: Caller, query: SearchQuery) -> dict[str, Any]:
    if query.offset < 0 or query.limit < 0:
        raise errors.NEGATIVE_PAGING()
    limit = min(query.limit or MAX_LIMIT, MAX_LIMIT)
    if query.from_time and query.to_time and query.from_time > query.to_time:
        raise errors.FROM_AFTER_TO()
    party = query.on_behalf_of or caller_party(caller)
    if party is None:
        raise errors.CALLER_UNKNOWN()
    if not await may_act_for(pool, caller, party):
        raise errors.NO_ACCESS()

    if query.idempotent_key is not None:
        ids = await repo.find_by_idempotent_key(pool, query.idempotent_key, party)
        return _page(ids, len(ids), query.offset, limit)

    branches: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    filters = ""
    if query.resource_id is not None:
        filters += f" AND resource_id = {arg(query.resource_id)}"
    if query.from_time is not None:
        filters += f" AND requested_publish_time > {arg(query.from_time)}"
    if query.to_time is not None:
        filters += f" AND requested_publish_time < {arg(query.to_time)}"
    if query.status is not None:
        filters += f" AND status = {arg(query.status)}"
    if query.senders_reference is not None:
        filters += f" AND senders_reference = {arg(query.senders_reference)}"
    if query.role in ("Recipient", "RecipientAndSender"):
        hidden = ", ".join(str(s) for s in HIDDEN_FROM_RECIPIENT)
        branches.append(f"recipient = {arg(party)} AND status NOT IN ({hidden}){filters}")
    if query.role in ("Sender", "RecipientAndSender") and party.startswith(ORG_URN):
        branches.append(f"service_owner_id = {arg(party[len(ORG_URN) :])}{filters}")
    if not branches:
        return _page([], 0, query.offset, limit)
    ids, total = await repo.search_ids(pool, branches, args, query.offset, limit)
    return _page(ids, total, query.offset, limit)


def _page(ids: list[uuid.UUID], total: int, offset: int, limit: int) -> dict[str, Any]:
    return {
        "ids": [str(i) for i in ids],
        "pagination": {
            "totalItems": total,
            "page": offset // limit + 1 if limit else 1,
            "pages": math.ceil(total / limit) if limit else 0,
        },
    }
