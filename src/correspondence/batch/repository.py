"""Every SQL statement of the batch slice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg

from correspondence.batch.schemas import CANCELLED, COMMITTED, COMPLETED, OPEN
from correspondence.notification import statuses as st

CREATE_TASK = "batch.create"  # creates the next chunk of a committed batch's correspondences
PROGRESS_TASK = "batch.progress"  # counts what was published and notified; completes the batch

# Outcomes of a recipient (migration 0017).
PUBLISHED, FAILED, PURGED = 1, 2, 3
NO_NOTIFICATION, NOTIFIED, NOTIFY_FAILED = 0, 1, 2

_COLUMNS = """id, owner_org, resource_id, senders_reference, status, pages, recipients, created_count,
    published_count, failed_count, purged_count, notified_count, notify_failed_count, created, committed,
    completed, cancelled"""


async def insert_batch(
    conn: asyncpg.Connection,
    *,
    batch_id: uuid.UUID,
    owner_org: str,
    resource_id: str,
    senders_reference: str,
    request: str,
    key: uuid.UUID | None,
    request_hash: bytes | None,
    created_by: str | None,
    at: datetime,
) -> asyncpg.Record | None:
    """The new batch; None when the owner already has a batch with this idempotency key."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""INSERT INTO batches (id, owner_org, resource_id, senders_reference, request, idempotent_key,
                request_hash, status, created_by, created)
            VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, {OPEN}, $8, $9)
            ON CONFLICT (owner_org, idempotent_key) WHERE idempotent_key IS NOT NULL DO NOTHING
            RETURNING {_COLUMNS}""",
        batch_id,
        owner_org,
        resource_id,
        senders_reference,
        request,
        key,
        request_hash,
        created_by,
        at,
    )
    return row


async def find_by_key(
    conn: asyncpg.Connection | asyncpg.Pool, owner_org: str, key: uuid.UUID
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_COLUMNS}, request_hash FROM batches WHERE owner_org = $1 AND idempotent_key = $2",
        owner_org,
        key,
    )
    return row


async def get_batch(
    conn: asyncpg.Connection | asyncpg.Pool, batch_id: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM batches WHERE id = $1" + (" FOR UPDATE" if lock else ""), batch_id
    )
    return row


async def get_request(conn: asyncpg.Connection, batch_id: uuid.UUID) -> str:
    """The correspondence as given at creation (JSON text)."""
    text: str = await conn.fetchval("SELECT request::text FROM batches WHERE id = $1", batch_id)
    return text


async def list_batches(
    conn: asyncpg.Connection | asyncpg.Pool,
    owner_org: str,
    resource_id: str | None,
    *,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM batches
            WHERE owner_org = $1 AND ($2::text IS NULL OR resource_id = $2)
            ORDER BY created DESC, id DESC LIMIT $3 OFFSET $4""",
        owner_org,
        resource_id,
        limit,
        offset,
    )
    return rows


async def list_all(
    conn: asyncpg.Connection, owner_org: str | None, resource_id: str | None, limit: int
) -> list[asyncpg.Record]:
    """For operators (the CLI): any owner's batches, newest first."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM batches
            WHERE ($1::text IS NULL OR owner_org = $1) AND ($2::text IS NULL OR resource_id = $2)
            ORDER BY created DESC, id DESC LIMIT $3""",
        owner_org,
        resource_id,
        limit,
    )
    return rows


async def get_page(conn: asyncpg.Connection, batch_id: uuid.UUID, page: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT recipients, hash FROM batch_pages WHERE batch_id = $1 AND page = $2", batch_id, page
    )
    return row


async def insert_page(
    conn: asyncpg.Connection,
    batch_id: uuid.UUID,
    page: int,
    recipients: list[str],
    page_hash: bytes,
    at: datetime,
) -> str | None:
    """Add a page's recipients and count them on the batch (whose row the caller has locked).
    Returns a recipient that is already in another page (nothing is counted then: the caller rolls
    back), else None."""
    row = await conn.fetchrow(
        """WITH ins AS (
             INSERT INTO batch_recipients (batch_id, page, position, recipient)
             SELECT $1, $2, u.ord, u.recipient FROM unnest($3::text[]) WITH ORDINALITY u(recipient, ord)
             ON CONFLICT (batch_id, recipient) DO NOTHING
             RETURNING recipient)
           SELECT count(*) AS inserted,
                  (SELECT r FROM unnest($3::text[]) r
                   WHERE r NOT IN (SELECT recipient FROM ins) LIMIT 1) AS taken
           FROM ins""",
        batch_id,
        page,
        recipients,
    )
    assert row is not None
    if row["inserted"] != len(recipients):
        taken: str = row["taken"]
        return taken
    await conn.execute(
        """WITH p AS (INSERT INTO batch_pages (batch_id, page, recipients, hash, created)
                      VALUES ($1, $2, $3, $4, $5))
           UPDATE batches SET pages = pages + 1, recipients = recipients + $3 WHERE id = $1""",
        batch_id,
        page,
        len(recipients),
        page_hash,
        at,
    )
    return None


async def set_status(conn: asyncpg.Connection, batch_id: uuid.UUID, status: int, at: datetime) -> None:
    column = {COMMITTED: "committed", COMPLETED: "completed", CANCELLED: "cancelled"}[status]
    await conn.execute(f"UPDATE batches SET status = $2, {column} = $3 WHERE id = $1", batch_id, status, at)


# --- creating the correspondences (jobs.py) ---------------------------------------------------


async def next_recipients(conn: asyncpg.Connection, batch_id: uuid.UUID, limit: int) -> list[asyncpg.Record]:
    """The next recipients still to create, in page order."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT page, position, recipient FROM batch_recipients
           WHERE batch_id = $1 AND correspondence_id IS NULL AND outcome IS NULL
           ORDER BY page, position LIMIT $2""",
        batch_id,
        limit,
    )
    return rows


async def record_created(
    conn: asyncpg.Connection,
    batch_id: uuid.UUID,
    pages: list[int],
    positions: list[int],
    ids: list[uuid.UUID],
) -> None:
    await conn.execute(
        """WITH u AS (
             UPDATE batch_recipients b SET correspondence_id = u.id
             FROM unnest($2::int[], $3::int[], $4::uuid[]) u(page, position, id)
             WHERE b.batch_id = $1 AND b.page = u.page AND b.position = u.position
             RETURNING 1)
           UPDATE batches SET created_count = created_count + (SELECT count(*) FROM u) WHERE id = $1""",
        batch_id,
        pages,
        positions,
        ids,
    )


async def record_not_created(
    conn: asyncpg.Connection, batch_id: uuid.UUID, pages: list[int], positions: list[int], error: str
) -> None:
    """Recipients whose correspondence Initialize refused: failed, with its reason."""
    await conn.execute(
        f"""WITH u AS (
              UPDATE batch_recipients b SET outcome = {FAILED}, error = $4
              FROM unnest($2::int[], $3::int[]) u(page, position)
              WHERE b.batch_id = $1 AND b.page = u.page AND b.position = u.position AND b.outcome IS NULL
              RETURNING 1)
            UPDATE batches SET failed_count = failed_count + (SELECT count(*) FROM u) WHERE id = $1""",
        batch_id,
        pages,
        positions,
        error,
    )


async def stop_creating(conn: asyncpg.Connection, batch_id: uuid.UUID, reason: str) -> int:
    """Recipients not created yet will not be: failed with `reason` (for recall of a committed
    batch); returns how many. The batch then completes with what was created."""
    count: int = await conn.fetchval(
        f"""WITH u AS (
              UPDATE batch_recipients SET outcome = {FAILED}, error = $2
              WHERE batch_id = $1 AND correspondence_id IS NULL AND outcome IS NULL
              RETURNING 1),
            b AS (UPDATE batches SET failed_count = failed_count + (SELECT count(*) FROM u) WHERE id = $1)
            SELECT count(*) FROM u""",
        batch_id,
        reason,
    )
    return count


async def correspondence_ids(
    conn: asyncpg.Connection, batch_id: uuid.UUID, *, chunk: int = 5000
) -> AsyncIterator[list[uuid.UUID]]:
    """The batch's correspondences created so far, in chunks (for recall: purge what is unpublished,
    cancel notifications not yet sent)."""
    after: tuple[int, int] = (0, 0)
    while True:
        rows = await conn.fetch(
            """SELECT page, position, correspondence_id FROM batch_recipients
               WHERE batch_id = $1 AND (page, position) > ($2, $3) AND correspondence_id IS NOT NULL
               ORDER BY page, position LIMIT $4""",
            batch_id,
            after[0],
            after[1],
            chunk,
        )
        if not rows:
            return
        yield [r["correspondence_id"] for r in rows]
        after = (rows[-1]["page"], rows[-1]["position"])


# --- progress (jobs.py) ------------------------------------------------------------------------

# Created recipients whose correspondence was published, failed, or purged before publishing get
# their outcome; each is looked at until then only (the partial index batch_recipients_to_settle).
SETTLE = f"""
WITH s AS (
  UPDATE batch_recipients b
  SET outcome = CASE WHEN c.published IS NOT NULL THEN {PUBLISHED} WHEN c.status IN (7, 8) THEN {PURGED}
                     ELSE {FAILED} END
  FROM correspondences c
  WHERE b.batch_id = $1 AND b.correspondence_id IS NOT NULL AND b.outcome IS NULL
    AND c.id = b.correspondence_id AND (c.published IS NOT NULL OR c.status IN (7, 8, 11))
  RETURNING b.outcome)
UPDATE batches SET published_count = published_count + (SELECT count(*) FROM s WHERE outcome = {PUBLISHED}),
                   failed_count = failed_count + (SELECT count(*) FROM s WHERE outcome = {FAILED}),
                   purged_count = purged_count + (SELECT count(*) FROM s WHERE outcome = {PURGED})
WHERE id = $1
RETURNING (SELECT count(*) FROM s) AS settled
"""

# Published recipients whose first (not reminder) notification order is finished: sent when an
# address took it. At most $2 a round, so a batch waiting for its SMS window costs little.
SETTLE_NOTIFICATIONS = f"""
WITH w AS (
  SELECT b.page, b.position, b.correspondence_id FROM batch_recipients b
  WHERE b.batch_id = $1 AND b.outcome = {PUBLISHED} AND b.notified IS NULL LIMIT $2),
o AS (
  SELECT w.page, w.position,
         CASE WHEN n.id IS NULL THEN {NO_NOTIFICATION}
              WHEN n.processing_status IN ('{st.REGISTERED}', '{st.PROCESSING}') THEN NULL
              WHEN n.sent IS NOT NULL THEN {NOTIFIED} ELSE {NOTIFY_FAILED} END AS notified
  FROM w LEFT JOIN LATERAL (
    SELECT id, processing_status, sent FROM notification_orders
    WHERE correspondence_id = w.correspondence_id AND NOT is_reminder
    ORDER BY created LIMIT 1) n ON true),
s AS (
  UPDATE batch_recipients b SET notified = o.notified FROM o
  WHERE b.batch_id = $1 AND b.page = o.page AND b.position = o.position AND o.notified IS NOT NULL
  RETURNING b.notified)
UPDATE batches SET notified_count = notified_count + (SELECT count(*) FROM s WHERE notified = {NOTIFIED}),
                   notify_failed_count = notify_failed_count
                     + (SELECT count(*) FROM s WHERE notified = {NOTIFY_FAILED})
WHERE id = $1
RETURNING (SELECT count(*) FROM s) AS settled, (SELECT count(*) FROM w) - (SELECT count(*) FROM s) AS waiting
"""


async def settle(conn: asyncpg.Connection, batch_id: uuid.UUID) -> tuple[int, bool]:
    """How many recipients got an outcome now, and whether any still wait for one."""
    row = await conn.fetchrow(SETTLE, batch_id)
    assert row is not None
    # Asked after the UPDATE: its own sub-statements would still see the rows it just settled.
    # Two EXISTS, one per partial index (to create, to settle), instead of a scan of the batch.
    pending: bool = await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM batch_recipients
                          WHERE batch_id = $1 AND correspondence_id IS NULL AND outcome IS NULL)
               OR EXISTS (SELECT 1 FROM batch_recipients
                          WHERE batch_id = $1 AND correspondence_id IS NOT NULL AND outcome IS NULL)""",
        batch_id,
    )
    return int(row["settled"]), pending


async def settle_notifications(conn: asyncpg.Connection, batch_id: uuid.UUID, limit: int) -> tuple[int, int]:
    """How many recipients' first notification got an outcome now, and how many looked at wait."""
    row = await conn.fetchrow(SETTLE_NOTIFICATIONS, batch_id, limit)
    assert row is not None
    return int(row["settled"]), int(row["waiting"])


async def notifications_pending(conn: asyncpg.Connection, batch_id: uuid.UUID) -> bool:
    found: bool = await conn.fetchval(
        f"""SELECT EXISTS (SELECT 1 FROM batch_recipients
                           WHERE batch_id = $1 AND outcome = {PUBLISHED} AND notified IS NULL)""",
        batch_id,
    )
    return found


async def failures(
    conn: asyncpg.Connection | asyncpg.Pool, batch_id: uuid.UUID, limit: int
) -> list[asyncpg.Record]:
    """Recipients that were not created, with why (for the CLI's and the web page's detail)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT recipient, error FROM batch_recipients
            WHERE batch_id = $1 AND outcome = {FAILED} AND correspondence_id IS NULL
            ORDER BY page, position LIMIT $2""",
        batch_id,
        limit,
    )
    return rows
