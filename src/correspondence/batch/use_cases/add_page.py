"""Add a page of recipients to an open batch; the same page again is a replay."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from correspondence.auth.caller import Caller
from correspondence.batch import errors
from correspondence.batch import repository as repo
from correspondence.batch.schemas import OPEN, STATUS_NAMES, BatchRecipientsPageExt
from correspondence.batch.use_cases.view import owned_batch
from correspondence.correspondence import errors as correspondence_errors
from correspondence.kit import clock
from correspondence.kit.text import normalise_recipient


@dataclass(frozen=True)
class PageResult:
    body: dict[str, Any]
    replayed: bool


def _page_hash(recipients: list[str]) -> bytes:
    return hashlib.blake2b("\n".join(recipients).encode(), digest_size=16).digest()


async def add_page(
    *, pool: asyncpg.Pool, caller: Caller, batch_id: uuid.UUID, page: int, request: BatchRecipientsPageExt
) -> PageResult:
    """Pages of one batch are added one at a time (the batch row is locked), so a page and a commit
    never cross. A page's recipients are compared as Initialize stores them (canonical URNs)."""
    recipients = [normalise_recipient(r) for r in request.recipients]
    if len(set(recipients)) != len(recipients):
        raise correspondence_errors.RECIPIENTS_NOT_UNIQUE()
    page_hash = _page_hash(recipients)
    body = {"batchId": str(batch_id), "page": page, "recipients": len(recipients)}
    async with pool.acquire() as conn, conn.transaction():
        batch = await owned_batch(conn, caller, batch_id, lock=True)
        existing = await repo.get_page(conn, batch_id, page)
        if existing is not None:
            if bytes(existing["hash"]) != page_hash:
                raise errors.PAGE_CHANGED(page=page)
            return PageResult(body, replayed=True)
        if batch["status"] != OPEN:
            raise errors.NOT_OPEN(status=STATUS_NAMES[batch["status"]])
        taken = await repo.insert_page(conn, batch_id, page, recipients, page_hash, clock.now())
        if taken is not None:
            raise errors.RECIPIENT_IN_OTHER_PAGE(recipient=taken)  # rolls the page back
    return PageResult(body, replayed=False)
