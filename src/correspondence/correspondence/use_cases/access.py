"""Who may see and act on one correspondence, and in which role (api.md §2.4–§2.6).

The sender is the organisation that owns the correspondence's resource. The recipient is the
recipient party itself, or a person with a delegation for that organisation. A token with the
write scope acts as sender when it may; otherwise a read scope acts as recipient. Anyone else is
refused with 403 (DESIGN decision 6) — never shown data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

import asyncpg

from correspondence.auth import scopes
from correspondence.auth.caller import Caller
from correspondence.correspondence import errors
from correspondence.correspondence import repository as repo
from correspondence.kit.text import ORG_URN, PERSON_URN

Role = Literal["sender", "recipient"]

# Statuses a recipient may see (behaviour.md §2.2; Reserved is included, as the reference does).
AVAILABLE_TO_RECIPIENT = frozenset({2, 3, 4, 5, 6, 9, 10, 12, 13})
PURGED = frozenset({repo.PURGED_BY_RECIPIENT, repo.PURGED_BY_ALTINN})


@dataclass(frozen=True, slots=True)
class Access:
    row: asyncpg.Record
    role: Role
    party: str | None  # the acting party's URN, written on status rows

    @property
    def status(self) -> int:
        return int(self.row["status"])

    @property
    def purged(self) -> bool:
        return self.status in PURGED

    @property
    def available_to_recipient(self) -> bool:
        return self.status in AVAILABLE_TO_RECIPIENT


def caller_party(caller: Caller) -> str | None:
    if caller.org is not None:
        return ORG_URN + caller.org
    if caller.pid is not None:
        return PERSON_URN + caller.pid
    return None


async def may_act_for(pool: asyncpg.Pool | asyncpg.Connection, caller: Caller, party: str) -> bool:
    """The caller is `party`, or a person with a delegation for it."""
    if caller_party(caller) == party:
        return True
    if caller.org is not None and party == ORG_URN + caller.org:
        return True
    if caller.pid is not None and party.startswith(ORG_URN):
        return await repo.has_delegation(pool, PERSON_URN + caller.pid, party)
    return False


async def resolve(
    pool: asyncpg.Pool | asyncpg.Connection,
    caller: Caller,
    correspondence_id: uuid.UUID,
    *,
    allow: tuple[Role, ...] = ("sender", "recipient"),
    lock: bool = False,
) -> Access:
    row = await repo.get_correspondence(pool, correspondence_id, lock=lock)
    if row is None:
        raise errors.NOT_FOUND()
    is_sender = caller.org is not None and caller.org == row["service_owner_id"]
    reads = scopes.READ in caller.scopes
    is_recipient = reads and await may_act_for(pool, caller, row["recipient"])
    party = caller_party(caller)
    if "sender" in allow and is_sender and (caller.is_sender or not is_recipient):
        return Access(row, "sender", party)
    if "recipient" in allow and is_recipient:
        if caller.pid is not None and row["recipient"].startswith(ORG_URN):
            party = PERSON_URN + caller.pid
        return Access(row, "recipient", party)
    raise errors.NO_ACCESS()
