"""Record lifecycle events in the caller's transaction (api.md §7.10, behaviour.md §6).

One outbox row per (event type, change) names every item the change touched; the dispatcher turns
it into one CloudEvent per item later. The write is therefore one small INSERT whatever the size
of the change, and an event exists exactly when its change was committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

import asyncpg

from correspondence.kit import clock

PREFIX = "no.altinn.correspondence."

Kind = Literal["correspondence", "attachment", "notification", "resource", "batch"]

# Every event the reference lists, by its lower-case name, with what its ids name (and one of ours).
KINDS: dict[str, Kind] = {
    "attachmentinitialized": "attachment",
    "attachmentuploadprocessing": "attachment",
    "attachmentpublished": "attachment",
    "attachmentuploadfailed": "attachment",
    "attachmentpurged": "attachment",
    "attachmentdownloaded": "attachment",
    "attachmentexpired": "attachment",
    "correspondenceinitialized": "correspondence",
    "correspondencepublished": "correspondence",
    "correspondencearchived": "correspondence",
    "correspondencepurged": "correspondence",
    "correspondencepublishfailed": "correspondence",
    "correspondencereceiverread": "correspondence",
    "correspondencereceiverconfirmed": "correspondence",
    "correspondencereceiverreplied": "correspondence",
    "correspondencereceiverneverconfirmed": "correspondence",
    "correspondencereceiverreserved": "correspondence",
    "correspondencereceiverneverread": "correspondence",
    # Ours: the reference tells of a forward only by a Dialogporten activity (DESIGN decision 7).
    "correspondenceforwarded": "correspondence",
    "notificationcreated": "notification",
    "correspondencenotificationcreationfailed": "correspondence",
    "correspondencenotificationfailed": "correspondence",
    "correspondencenotificationallfailed": "correspondence",
    "correspondencenotificationdelivered": "correspondence",
    "correspondencenotificationreminderdelivered": "correspondence",
    # Ours (issue 13, recall/): a recall stopped something of the correspondence; a resource was
    # paused or resumed (the ids name rows of resource_pause_log).
    "correspondencerecalled": "correspondence",
    "resourcepaused": "resource",
    "resourceresumed": "resource",
    # Ours, of the /ext/api/v1 extensions: the ids name batches.
    "batchcompleted": "batch",
}

# The subject is the sender except for these, whose subject is the recipient (behaviour.md §6).
RECIPIENT_SUBJECT = frozenset(
    {"correspondencepublished", "correspondencereceiverneverread", "correspondencereceiverneverconfirmed"}
)

INSERT = "INSERT INTO event_outbox (type, ids, created) VALUES ($1, $2::uuid[], $3)"


async def record(conn: asyncpg.Connection | asyncpg.Pool, event_type: str, ids: Sequence[uuid.UUID]) -> None:
    """Record `event_type` for these correspondences (attachments, notification orders), in the
    caller's transaction: pass the connection that makes the change."""
    if event_type not in KINDS:
        raise ValueError(f"unknown event type {event_type}")
    if ids:
        await conn.execute(INSERT, event_type, list(ids), clock.now())
