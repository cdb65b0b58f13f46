"""Who may see and act on one correspondence, and in which role (api.md §2.4–§2.6).

The sender is the organisation that owns the correspondence's resource, calling with the sender
policy's scopes (write; a raw Maskinporten token also serviceowner): the organisation alone is not
enough. The recipient is the recipient party itself, or a person with a delegation for that
organisation, with the read scope, an authentication level at least the resource's minimum, and —
for confidential correspondence reached through a delegation — a delegation that includes
confidential post. Anyone else is refused with 403 (DESIGN decision 6) — never shown data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from correspondence.auth import scopes
from correspondence.auth.caller import Caller
from correspondence.correspondence import errors
from correspondence.correspondence import repository as repo
from correspondence.kit.text import ORG_URN, PERSON_URN

Role = Literal["sender", "recipient"]

AVAILABLE_TO_RECIPIENT = repo.AVAILABLE_TO_RECIPIENT
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


def is_owner_acting_as_sender(caller: Caller, owner_org: str) -> bool:
    """Sender policy (write scope; Maskinporten also serviceowner) and the owning organisation."""
    return caller.is_sender and caller.org is not None and caller.org == owner_org


def reads_as_recipient(caller: Caller) -> bool:
    return scopes.READ in caller.scopes


def acting_party(caller: Caller, recipient: str) -> str | None:
    """The party written on a recipient's status rows: a person acting for an organisation is
    named as the person."""
    if caller.pid is not None and recipient.startswith(ORG_URN):
        return PERSON_URN + caller.pid
    return caller_party(caller)


def self_fetch(caller: Caller, at: datetime, unless_since: datetime) -> repo.SelfFetch:
    """resolve's rules for a caller who is the recipient party itself, for the database to apply
    (repo.get_for_overviews): the read scope, not the owning organisation acting as sender, and the
    caller's authentication level (confidential correspondence needs no delegation for oneself)."""
    party = caller_party(caller)
    return repo.SelfFetch(
        recipient=party if reads_as_recipient(caller) else None,
        party=acting_party(caller, party) if party is not None else None,
        auth_level=caller.auth_level,
        sender_org=caller.org if caller.is_sender else None,
        at=at,
        unless_since=unless_since,
    )


@dataclass(frozen=True, slots=True)
class Acting:
    """How a caller acts for a party: as the party itself, or a person through a delegation."""

    delegated: bool
    confidential: bool  # may see the party's confidential correspondence


_SELF = Acting(delegated=False, confidential=True)


async def acting_for(pool: asyncpg.Pool | asyncpg.Connection, caller: Caller, party: str) -> Acting | None:
    """The caller is `party`, or a person with a delegation for it; None otherwise."""
    if caller_party(caller) == party:
        return _SELF
    if caller.org is not None and party == ORG_URN + caller.org:
        return _SELF
    if caller.pid is not None and party.startswith(ORG_URN):
        confidential = await repo.delegation(pool, PERSON_URN + caller.pid, party)
        return None if confidential is None else Acting(delegated=True, confidential=confidential)
    return None


async def may_act_for(pool: asyncpg.Pool | asyncpg.Connection, caller: Caller, party: str) -> bool:
    return await acting_for(pool, caller, party) is not None


def may_read(caller: Caller, acting: Acting, *, min_auth_level: int, confidential: bool) -> bool:
    """What the reference's PDP adds for a recipient: the resource's minimum authentication level,
    and for confidential correspondence a delegation that includes it."""
    return caller.auth_level >= min_auth_level and (acting.confidential or not confidential)


async def resolve(
    pool: asyncpg.Pool | asyncpg.Connection,
    caller: Caller,
    correspondence_id: uuid.UUID,
    *,
    allow: tuple[Role, ...] = ("sender", "recipient"),
    lock: bool = False,
) -> Access:
    row = await repo.get_correspondence(pool, correspondence_id, lock=lock)
    return await access_to(pool, caller, row, allow=allow)


async def access_to(
    pool: asyncpg.Pool | asyncpg.Connection,
    caller: Caller,
    row: asyncpg.Record | None,
    *,
    allow: tuple[Role, ...] = ("sender", "recipient"),
) -> Access:
    """resolve for a row the caller has read already (e.g. repo.get_for_overviews); None: there is none."""
    if row is None:
        raise errors.NOT_FOUND()
    party = caller_party(caller)
    if "sender" in allow and is_owner_acting_as_sender(caller, row["service_owner_id"]):
        return Access(row, "sender", party)
    if "recipient" in allow and reads_as_recipient(caller):
        acting = await acting_for(pool, caller, row["recipient"])
        if acting is not None and may_read(
            caller, acting, min_auth_level=row["min_auth_level"], confidential=row["is_confidential"]
        ):
            return Access(row, "recipient", acting_party(caller, row["recipient"]))
    raise errors.NO_ACCESS()
