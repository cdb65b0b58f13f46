"""One correspondence as its sender or recipient sees it: overview, details, content
(api.md §3.4, §3.5, §4.1). Recipients' reads are recorded as Fetched / Read."""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import orjson

from correspondence.attachment.use_cases.view import correspondence_attachments
from correspondence.auth.caller import Caller
from correspondence.correspondence import errors
from correspondence.correspondence import repository as repo
from correspondence.correspondence.schemas import STATUS_NAMES
from correspondence.correspondence.use_cases.access import Access, access_to, resolve, self_fetch
from correspondence.events import outbox
from correspondence.kit import clock
from correspondence.kit.batch import Batcher
from correspondence.notification.use_cases.view import notification_details

_PURGED = (repo.PURGED_BY_RECIPIENT, repo.PURGED_BY_ALTINN)
_NOT_CURRENT = (repo.FETCHED, repo.ATTACHMENTS_DOWNLOADED, repo.FORWARDED)
_HIDDEN_FROM_SENDER = (repo.PURGED_BY_RECIPIENT, repo.PURGED_BY_ALTINN, 9)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def current_status(history: list[repo.StatusRow]) -> repo.StatusRow:
    """The latest lifecycle status (DESIGN decision 3): Fetched, AttachmentsDownloaded and
    Forwarded never replace it, and a purge is terminal."""
    purged = [s for s in history if s.status in _PURGED]
    if purged:
        return purged[0]
    lifecycle = [s for s in history if s.status not in _NOT_CURRENT]
    return lifecycle[-1]


RECIPIENT_NAME = "{{recipientName}}"


async def _content(
    pool: asyncpg.Pool, row: asyncpg.Record, published: bool, *, attachments: bool = True
) -> dict[str, Any]:
    if published:
        # After publication the sender gets a placeholder, as the reference does (api.md §3.4).
        return {
            "language": "no",
            "messageTitle": "",
            "messageSummary": "",
            "messageBody": "",
            "attachments": [],
        }
    texts = [row["message_title"], row["message_summary"], row["message_body"]]
    if any(RECIPIENT_NAME in t for t in texts):
        # One content row serves every recipient of a request: the name is put in when read.
        recipient = row["recipient"]
        name = await repo.get_party_name(pool, recipient) or recipient.rsplit(":", 1)[-1]
        texts = [t.replace(RECIPIENT_NAME, name) for t in texts]
    return {
        "language": row["language"],
        "messageTitle": texts[0],
        "messageSummary": texts[1],
        "messageBody": texts[2],
        "attachments": await correspondence_attachments(pool, row["id"]) if attachments else [],
    }


async def _common(
    pool: asyncpg.Pool,
    row: asyncpg.Record,
    history: list[repo.StatusRow],
    role: str,
    *,
    attachments: bool = True,
) -> dict[str, Any]:
    current = current_status(history)
    # After publication the sender sees a placeholder; the recipient always sees the content.
    published = role == "sender" and any(s.status == repo.PUBLISHED for s in history)
    return {
        "correspondenceId": str(row["id"]),
        "resourceId": row["resource_id"],
        "sender": row["sender"],
        "sendersReference": row["senders_reference"],
        "messageSender": row["message_sender"] or "",
        "recipient": row["recipient"],
        "content": await _content(pool, row, published, attachments=attachments),
        "created": iso(row["created"]),
        "requestedPublishTime": iso(row["requested_publish_time"]),
        "allowSystemDeleteAfter": None,
        "dueDateTime": iso(row["due_date_time"]),
        "published": iso(row["published"]),
        "read": iso(row["read_at"]),
        "status": STATUS_NAMES[current.status],
        "statusText": current.status_text,
        "statusChanged": iso(current.status_changed),
        "externalReferences": orjson.loads(row["external_references"]),
        "propertyList": orjson.loads(row["property_list"]),
        "replyOptions": orjson.loads(row["reply_options"]),
        "notification": None,
        "ignoreReservation": bool(row["ignore_reservation"]),
        "isConfirmationNeeded": row["is_confirmation_needed"],
        "isConfidential": row["is_confidential"],
        "allowForwarding": row["allow_forwarding"],
        "altinn2CorrespondenceId": None,  # no Altinn 2 here (DESIGN decision 7)
    }


FETCH_DEBOUNCE = timedelta(seconds=15)
_REPLY_LABEL = {"en": "Reply options:", "nn": "Svarval:"}


_Fetch = tuple[uuid.UUID, str | None, datetime, datetime | None]  # cid, party, at, unless_since


class _FetchedWriter:
    """The overviews' Fetched rows, written in batches (kit/batch.py): one INSERT and one commit for
    all the overviews that arrive while the previous batch is being written."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.batcher: Batcher[asyncpg.Connection, _Fetch] = Batcher(pool.acquire, self._write)

    async def _write(self, conn: asyncpg.Connection, items: list[_Fetch]) -> None:
        # The debounce cannot see rows of its own statement: one per correspondence and party.
        seen: set[tuple[uuid.UUID, str | None]] = set()
        unique: list[_Fetch] = []
        for item in items:
            key = (item[0], item[1])
            if item[3] is None or key not in seen:
                seen.add(key)
                unique.append(item)
        await repo.record_fetched_many(conn, unique)


_W = TypeVar("_W")


def _for_pool(
    registry: weakref.WeakKeyDictionary[asyncpg.Pool, _W],
    pool: asyncpg.Pool,
    make: Callable[[asyncpg.Pool], _W],
) -> _W | None:
    """The pool's batch writer (one per pool), or None for a pool (or connection) without weak
    references: its caller then writes on its own."""
    try:
        found = registry.get(pool)
        if found is None:
            found = registry[pool] = make(pool)
    except TypeError:
        return None
    return found


_writers: weakref.WeakKeyDictionary[asyncpg.Pool, _FetchedWriter] = weakref.WeakKeyDictionary()


async def _record_fetched(pool: asyncpg.Pool, item: _Fetch) -> None:
    writer = _for_pool(_writers, pool, _FetchedWriter)
    if writer is None:
        await repo.record_fetched(pool, item[0], item[1], item[2], unless_since=item[3])
        return
    await writer.batcher.submit(item)


class _Read:
    __slots__ = ("cid", "fetch", "row")

    def __init__(self, cid: uuid.UUID, fetch: repo.SelfFetch) -> None:
        self.cid = cid
        self.fetch = fetch
        self.row: asyncpg.Record | None = None


class _OverviewReader:
    """The overviews' reads, with their Fetched rows, in batches (kit/batch.py): one statement and one
    commit for all the overviews that arrive while the previous batch is being read."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.batcher: Batcher[asyncpg.Connection, _Read] = Batcher(pool.acquire, self._read)

    async def _read(self, conn: asyncpg.Connection, reads: list[_Read]) -> None:
        # The debounce cannot see rows of its own statement: one per correspondence and party.
        seen: set[tuple[uuid.UUID, str | None]] = set()
        items: list[tuple[uuid.UUID, repo.SelfFetch | None, bool]] = []
        for read in reads:
            key = (read.cid, read.fetch.party)
            items.append((read.cid, read.fetch, key not in seen))
            seen.add(key)
        for read, row in zip(reads, await repo.get_for_overviews(conn, items), strict=True):
            read.row = row


_readers: weakref.WeakKeyDictionary[asyncpg.Pool, _OverviewReader] = weakref.WeakKeyDictionary()


async def _read_overview(pool: asyncpg.Pool, cid: uuid.UUID, fetch: repo.SelfFetch) -> asyncpg.Record | None:
    reader = _for_pool(_readers, pool, _OverviewReader)
    if reader is None:
        return await repo.get_for_overview(pool, cid, fetch)
    read = _Read(cid, fetch)
    await reader.batcher.submit(read)
    return read.row


async def _record_fetch(pool: asyncpg.Pool, access: Access, *, debounce: bool, read: bool = False) -> None:
    """Recipients' reads leave Fetched (and, for the content, Read) in the history."""
    now = clock.now()
    cid = access.row["id"]
    if not read or access.row["read_at"] is not None:
        # Only Fetched: one statement, which also does the debounce (batched with other requests').
        since = now - FETCH_DEBOUNCE if debounce else None
        await _record_fetched(pool, (cid, access.party, now, since))
        return
    # The first read: Fetched (debounced) and Read together. Fetched takes its id first, so the
    # history lists it before Read at the same time.
    since = now - FETCH_DEBOUNCE if debounce else None
    async with pool.acquire() as conn, conn.transaction():
        await repo.record_fetched(conn, cid, access.party, now, unless_since=since)
        await repo.append_statuses(conn, [cid], [repo.READ], [STATUS_NAMES[repo.READ]], now, access.party)
        await outbox.record(conn, "correspondencereceiverread", [cid])


def _check_visible(access: Access, *, reject_purged: bool) -> None:
    if reject_purged and access.purged:
        raise errors.NOT_FOUND()
    if access.role == "recipient" and not access.available_to_recipient:
        raise errors.NOT_FOUND()


async def get_overview(*, pool: asyncpg.Pool, caller: Caller, correspondence_id: uuid.UUID) -> dict[str, Any]:
    # One statement for all the overviews that arrive together (_OverviewReader) reads each row, its
    # history, orders and whether it has attachments, and writes the Fetched row of each recipient
    # reading as the party itself: the answer comes after that commit. Through a delegation the
    # Fetched row follows in a batch of its own (_FetchedWriter). The history read before the
    # Fetched row shows the same current status (Fetched never is).
    now = clock.now()
    fetch = self_fetch(caller, now, now - FETCH_DEBOUNCE)
    access = await access_to(pool, caller, await _read_overview(pool, correspondence_id, fetch))
    _check_visible(access, reject_purged=True)
    if access.role == "recipient" and not access.row["self_fetch"]:
        await _record_fetch(pool, access, debounce=True)
    row = access.row
    history, orders = repo.history_of(row), repo.orders_of(row)
    body = await _common(pool, row, history, access.role, attachments=row["has_attachments"])
    options = body["replyOptions"]
    if len(options) > 3 and body["content"]["messageBody"]:
        label = _REPLY_LABEL.get(str(row["language"]).lower(), "Svarvalg:")
        lines = "\n".join(f"{o.get('linkText') or ''}: {o.get('linkURL')}" for o in options)
        body["content"]["messageBody"] += f"\n\n{label}\n{lines}"
    body["notifications"] = [
        {"notificationOrderId": str(order_id), "isReminder": reminder} for order_id, reminder in orders
    ]
    return body


async def get_details(*, pool: asyncpg.Pool, caller: Caller, correspondence_id: uuid.UUID) -> dict[str, Any]:
    access = await resolve(pool, caller, correspondence_id)
    _check_visible(access, reject_purged=False)
    if access.role == "recipient":
        await _record_fetch(pool, access, debounce=False)
    row = access.row
    history = await repo.get_status_history(pool, correspondence_id)
    body = await _common(pool, row, history, access.role)
    body["notifications"] = await notification_details(pool, row, correspondence_id)
    hidden = _HIDDEN_FROM_SENDER if access.role == "sender" else ()
    body["statusHistory"] = [
        {
            "status": STATUS_NAMES[s.status],
            "statusText": s.status_text,
            "statusChanged": iso(s.status_changed),
        }
        for s in history
        if s.status not in hidden
    ]
    body["systemLabel"] = system_label(history, access.role)
    return body


def system_label(history: list[repo.StatusRow], role: str) -> str:
    """The reference reads Dialogporten's label for the end user (api.md §6.7). Without Dialogporten
    the one label a recipient sets here is Archive, by archiving; the sender, whose history leaves
    out Archived, always sees Default."""
    if role == "recipient" and any(s.status == repo.ARCHIVED for s in history):
        return "Archive"
    return "Default"


async def get_content(*, pool: asyncpg.Pool, caller: Caller, correspondence_id: uuid.UUID) -> str:
    """The message body for the recipient; reading it counts as Read (api.md §4.1)."""
    access = await resolve(pool, caller, correspondence_id, allow=("recipient",))
    _check_visible(access, reject_purged=True)
    await _record_fetch(pool, access, debounce=True, read=True)
    content = await _content(pool, access.row, published=False)
    return str(content["messageBody"])
