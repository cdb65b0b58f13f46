"""Every SQL statement of the attachment slice."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from correspondence.events import outbox

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

# Status numbers as stored (api.md §7.2).
INITIALIZED, UPLOAD_PROCESSING, PUBLISHED, PURGED, FAILED, EXPIRED = 0, 1, 2, 3, 4, 5
STATUS_NAMES = ["Initialized", "UploadProcessing", "Published", "Purged", "Failed", "Expired"]
# The event each status change publishes (api.md §7.10).
STATUS_EVENTS = {
    INITIALIZED: "attachmentinitialized",
    UPLOAD_PROCESSING: "attachmentuploadprocessing",
    PUBLISHED: "attachmentpublished",
    PURGED: "attachmentpurged",
    FAILED: "attachmentuploadfailed",
    EXPIRED: "attachmentexpired",
}
# Correspondence statuses that matter here (api.md §7.1).
_CORR_PUBLISHED, _CORR_PURGED = 2, (7, 8)

_COLUMNS = """a.id, a.resource_id, a.sender, a.service_owner_id, a.file_name, a.display_name,
  a.is_encrypted, a.checksum, a.senders_reference, a.expiration_in_days, a.data_location_type,
  a.blob_key, a.size, a.status, a.status_text, a.status_changed, a.created, a.upload_key"""


async def insert_attachments(
    conn: Conn,
    rows: list[dict[str, Any]],
    statuses: list[tuple[int, str]],
    at: datetime,
    party: str | None,
) -> None:
    """New attachments (set-based), each with the same status history; the last is current."""
    if not rows:
        return

    def column(name: str) -> list[Any]:
        return [r[name] for r in rows]

    await conn.execute(
        """WITH a AS (
             INSERT INTO attachments (id, resource_id, sender, service_owner_id, file_name, display_name,
               is_encrypted, checksum, senders_reference, expiration_in_days, data_location_type,
               blob_key, size, status, status_text, status_changed, created)
             SELECT u.id, u.resource_id, u.sender, u.owner, u.file_name, u.display_name, u.is_encrypted,
                    u.checksum, u.senders_reference, u.expiration_in_days, u.location, u.blob_key, u.size,
                    $14, $15, $17, $17
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::bool[], $8::text[], $9::text[], $10::int[], $11::smallint[], $12::text[],
                         $13::bigint[])
               AS u(id, resource_id, sender, owner, file_name, display_name, is_encrypted, checksum,
                    senders_reference, expiration_in_days, location, blob_key, size)
             RETURNING id)
           INSERT INTO attachment_statuses (attachment_id, status, status_text, status_changed, party)
           SELECT a.id, s.status, s.txt, $17, $18
           FROM a CROSS JOIN unnest($19::smallint[], $16::text[]) WITH ORDINALITY s(status, txt, ord)
           ORDER BY a.id, s.ord""",
        column("id"),
        column("resource_id"),
        column("sender"),
        column("service_owner_id"),
        column("file_name"),
        column("display_name"),
        column("is_encrypted"),
        column("checksum"),
        column("senders_reference"),
        column("expiration_in_days"),
        column("data_location_type"),
        column("blob_key"),
        column("size"),
        statuses[-1][0],
        statuses[-1][1],
        [t for _, t in statuses],
        at,
        party,
        [s for s, _ in statuses],
    )
    for status, _ in statuses:
        await outbox.record(conn, STATUS_EVENTS[status], column("id"))


async def get(conn: Conn, attachment_id: uuid.UUID, *, lock: bool = False) -> asyncpg.Record | None:
    sql = f"SELECT {_COLUMNS} FROM attachments a WHERE a.id = $1" + (" FOR UPDATE" if lock else "")
    row: asyncpg.Record | None = await conn.fetchrow(sql, attachment_id)
    return row


async def get_many(conn: Conn, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """Existing attachments named by an Initialize, with their total link expiry facts."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {_COLUMNS},
              (SELECT max(l.expiration_time) FROM correspondence_attachments l
               WHERE l.attachment_id = a.id) AS max_expiration
            FROM attachments a WHERE a.id = ANY($1::uuid[])""",
        ids,
    )
    return rows


async def append_status(
    conn: Conn, ids: list[uuid.UUID], status: int, text: str, at: datetime, party: str | None = None
) -> None:
    """One history row per attachment; it becomes the current status."""
    if not ids:
        return
    await conn.execute(
        """WITH ins AS (INSERT INTO attachment_statuses (attachment_id, status, status_text, status_changed,
                          party)
                        SELECT u.id, $2, $3, $4, $5 FROM unnest($1::uuid[]) u(id))
           UPDATE attachments SET status = $2, status_text = $3, status_changed = $4
           WHERE id = ANY($1::uuid[])""",
        ids,
        status,
        text,
        at,
        party,
    )
    await outbox.record(conn, STATUS_EVENTS[status], ids)


async def set_stored(
    conn: Conn, attachment_id: uuid.UUID, blob_key: str | None, size: int | None, checksum: str | None
) -> None:
    """Where the bytes now are; a supplied checksum is kept, else the computed one is stored. New
    bytes start their malware scan afresh (no claim, no earlier failures)."""
    await conn.execute(
        """UPDATE attachments SET blob_key = $2, size = $3,
             checksum = CASE WHEN checksum IS NULL OR checksum = '' THEN $4 ELSE checksum END,
             scan_token = NULL, scan_due = NULL, scan_tries = 0, scan_failing_since = NULL
           WHERE id = $1""",
        attachment_id,
        blob_key,
        size,
        checksum,
    )


async def clear_blob(conn: Conn, ids: list[uuid.UUID]) -> None:
    if ids:
        await conn.execute("UPDATE attachments SET blob_key = NULL WHERE id = ANY($1::uuid[])", ids)


async def history(conn: Conn, attachment_id: uuid.UUID) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT status, status_text, status_changed FROM attachment_statuses
           WHERE attachment_id = $1 ORDER BY status_changed, id""",
        attachment_id,
    )
    return rows


async def ever_had_status(conn: Conn, attachment_id: uuid.UUID, status: int) -> bool:
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM attachment_statuses WHERE attachment_id = $1 AND status = $2)",
        attachment_id,
        status,
    )
    return found


async def correspondence_ids(conn: Conn, attachment_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.fetch(
        """SELECT correspondence_id FROM correspondence_attachments WHERE attachment_id = $1
           ORDER BY created, correspondence_id""",
        attachment_id,
    )
    return [r["correspondence_id"] for r in rows]


async def linked_to_published(conn: Conn, attachment_id: uuid.UUID) -> bool:
    found: bool = await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM correspondence_attachments l
                          JOIN correspondences c ON c.id = l.correspondence_id
                          WHERE l.attachment_id = $1 AND c.published IS NOT NULL)""",
        attachment_id,
    )
    return found


async def attachment_ids_of(conn: Conn, correspondence_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Distinct attachments of these correspondences, in the order the request named them."""
    rows = await conn.fetch(
        """SELECT attachment_id FROM correspondence_attachments WHERE correspondence_id = ANY($1::uuid[])
           GROUP BY attachment_id ORDER BY min(position), attachment_id""",
        correspondence_ids,
    )
    return [r["attachment_id"] for r in rows]


async def of_correspondence(conn: Conn, correspondence_id: uuid.UUID) -> list[asyncpg.Record]:
    """The attachments as a correspondence shows them (api.md §6.11), in request order."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {_COLUMNS}, l.created AS linked, l.expiration_time
            FROM correspondence_attachments l JOIN attachments a ON a.id = l.attachment_id
            WHERE l.correspondence_id = $1 ORDER BY l.created, l.position, a.id""",
        correspondence_id,
    )
    return rows


async def link(conn: Conn, correspondence_id: uuid.UUID, attachment_id: uuid.UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""SELECT {_COLUMNS}, l.expiration_time AS link_expiration
            FROM correspondence_attachments l JOIN attachments a ON a.id = l.attachment_id
            WHERE l.correspondence_id = $1 AND l.attachment_id = $2""",
        correspondence_id,
        attachment_id,
    )
    return row


# --- lifecycle across slices ---------------------------------------------------------------------


async def enqueue_waiting_publishes(conn: Conn, attachment_ids: list[uuid.UUID], at: datetime) -> int:
    """After attachments are published: a publish job for every correspondence using them that is
    not settled yet and now has all its attachments published (the job itself checks again)."""
    result: str = await conn.execute(
        """INSERT INTO jobs (task, ref_id, run_at, created)
           SELECT 'correspondence.publish', c.id, GREATEST(c.requested_publish_time, $2), $2
           FROM correspondences c
           WHERE c.id IN (SELECT correspondence_id FROM correspondence_attachments
                          WHERE attachment_id = ANY($1::uuid[]))
             AND c.published IS NULL AND c.status NOT IN (7, 8, 11)
             AND NOT EXISTS (SELECT 1 FROM correspondence_attachments l JOIN attachments a
                               ON a.id = l.attachment_id
                             WHERE l.correspondence_id = c.id AND a.status IN (0, 1, 4))""",
        attachment_ids,
        at,
    )
    return int(result.rsplit(" ", 1)[-1])


async def lock_users(conn: Conn, attachment_ids: list[uuid.UUID]) -> None:
    """Lock the correspondences using these attachments (in id order), so that attachments of one
    correspondence settled at the same time see each other's outcome."""
    await conn.execute(
        """SELECT 1 FROM correspondences WHERE id IN
             (SELECT correspondence_id FROM correspondence_attachments WHERE attachment_id = ANY($1::uuid[]))
           ORDER BY id FOR UPDATE""",
        attachment_ids,
    )


async def unsettled_users(conn: Conn, attachment_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Correspondences using these attachments that are neither published, purged nor failed."""
    rows = await conn.fetch(
        """SELECT DISTINCT c.id FROM correspondence_attachments l JOIN correspondences c
             ON c.id = l.correspondence_id
           WHERE l.attachment_id = ANY($1::uuid[]) AND c.published IS NULL
             AND c.status NOT IN (7, 8, 11)
           ORDER BY c.id""",
        attachment_ids,
    )
    return [r["id"] for r in rows]


async def no_longer_used(conn: Conn, correspondence_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """Attachments of these correspondences that no live (non-purged) correspondence uses and that
    are not purged or expired yet; locked, so two purges do not both take them."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT a.id, a.blob_key FROM attachments a
           WHERE a.id IN (SELECT attachment_id FROM correspondence_attachments
                          WHERE correspondence_id = ANY($1::uuid[]))
             AND a.status NOT IN (3, 5)
             AND NOT EXISTS (SELECT 1 FROM correspondence_attachments l
                             JOIN correspondences c ON c.id = l.correspondence_id
                             WHERE l.attachment_id = a.id AND c.status NOT IN (7, 8))
           ORDER BY a.id
           FOR UPDATE OF a""",
        correspondence_ids,
    )
    return rows


async def expiry_facts(conn: Conn, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """For the expiry job: over links from live correspondences, is any without an expiry, and the
    latest expiry (behaviour.md §3.6)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """WITH a AS (SELECT id, status, blob_key FROM attachments WHERE id = ANY($1::uuid[])
                      ORDER BY id FOR UPDATE)
           SELECT a.id, a.status, a.blob_key,
             bool_or(l.attachment_id IS NOT NULL AND l.expiration_time IS NULL) AS never,
             max(l.expiration_time) AS latest
           FROM a
           LEFT JOIN (correspondence_attachments l JOIN correspondences c
                        ON c.id = l.correspondence_id AND c.status NOT IN (7, 8))
             ON l.attachment_id = a.id
           GROUP BY a.id, a.status, a.blob_key
           ORDER BY a.id""",
        ids,
    )
    return rows


async def set_upload_key(conn: Conn, attachment_id: uuid.UUID, key: str) -> None:
    """The key the upload that just claimed this attachment writes to: only that upload may store."""
    await conn.execute("UPDATE attachments SET upload_key = $2 WHERE id = $1", attachment_id, key)


async def mark_upload_alive(conn: Conn, attachment_id: uuid.UUID, at: datetime) -> None:
    """The upload of this attachment is still streaming (its heartbeat)."""
    await conn.execute(
        "UPDATE attachments SET upload_alive = $2 WHERE id = $1 AND status = 1 AND blob_key IS NULL",
        attachment_id,
        at,
    )


async def stalled_uploads(conn: asyncpg.Connection, before: datetime) -> list[uuid.UUID]:
    """Uploads whose streaming stopped without an outcome (the server died): no heartbeat since
    `before` and no bytes stored. Locked, skipping rows another worker holds."""
    rows = await conn.fetch(
        """SELECT id FROM attachments
           WHERE status = 1 AND blob_key IS NULL AND GREATEST(upload_alive, status_changed) < $1
           FOR UPDATE SKIP LOCKED""",
        before,
    )
    return [r["id"] for r in rows]


# --- malware scans: claimed under a lease, scanned outside any transaction (use_cases/scan.py) -----
# Files awaiting their scan are `status = 1 AND blob_key IS NOT NULL` (the partial index
# attachments_awaiting_scan); `scan_due` is the end of a claim's lease, or when to try again.


async def claim_scans(conn: Conn, now: datetime, lease_until: datetime, limit: int) -> list[asyncpg.Record]:
    """Claim files whose scan is due: never claimed, waiting out a backoff that has passed, or
    held by a claim whose lease ran out (its worker died: counted as a failed try). Each gets a
    fresh token; only the holder of the token may record the verdict."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """UPDATE attachments a
           SET scan_token = gen_random_uuid(), scan_due = $2,
               scan_tries = a.scan_tries + CASE WHEN a.scan_token IS NULL THEN 0 ELSE 1 END,
               scan_failing_since = CASE WHEN a.scan_token IS NULL THEN a.scan_failing_since
                                         ELSE COALESCE(a.scan_failing_since, $1) END
           WHERE a.id IN (SELECT id FROM attachments
                          WHERE status = 1 AND blob_key IS NOT NULL AND (scan_due IS NULL OR scan_due <= $1)
                          ORDER BY scan_due NULLS FIRST LIMIT $3 FOR UPDATE SKIP LOCKED)
           RETURNING a.id, a.blob_key, a.scan_token, a.scan_failing_since""",
        now,
        lease_until,
        limit,
    )
    return rows


async def extend_scan(conn: Conn, attachment_id: uuid.UUID, token: uuid.UUID, lease_until: datetime) -> bool:
    """The heartbeat of a running scan; False when the claim is no longer held."""
    done: str = await conn.execute(
        "UPDATE attachments SET scan_due = $3 WHERE id = $1 AND scan_token = $2 AND status = 1",
        attachment_id,
        token,
        lease_until,
    )
    return done != "UPDATE 0"


async def release_scan(conn: Conn, attachment_id: uuid.UUID, token: uuid.UUID) -> None:
    """A scan stopped on purpose (shutdown): due again at once, not counted as a failure."""
    await conn.execute(
        "UPDATE attachments SET scan_token = NULL, scan_due = NULL WHERE id = $1 AND scan_token = $2",
        attachment_id,
        token,
    )


async def get_scanned(conn: Conn, attachment_id: uuid.UUID, token: uuid.UUID) -> asyncpg.Record | None:
    """The attachment, locked, if it still awaits the scan this token claimed."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""SELECT {_COLUMNS}, a.scan_tries, a.scan_failing_since FROM attachments a
            WHERE a.id = $1 AND a.scan_token = $2 AND a.status = 1 FOR UPDATE""",
        attachment_id,
        token,
    )
    return row


async def postpone_scan(conn: Conn, attachment_id: uuid.UUID, due: datetime, failing_since: datetime) -> None:
    """A try that failed for a passing reason: unclaimed, due again at `due`."""
    await conn.execute(
        """UPDATE attachments SET scan_token = NULL, scan_due = $2, scan_tries = scan_tries + 1,
             scan_failing_since = $3 WHERE id = $1""",
        attachment_id,
        due,
        failing_since,
    )


async def clear_scan(conn: Conn, ids: list[uuid.UUID]) -> None:
    await conn.execute(
        """UPDATE attachments
           SET scan_token = NULL, scan_due = NULL, scan_tries = 0, scan_failing_since = NULL
           WHERE id = ANY($1::uuid[])""",
        ids,
    )


# --- pending blobs: bytes written before the rows that refer to them commit ----------------------


async def record_pending(conn: Conn, keys: list[str], at: datetime) -> None:
    await conn.execute(
        """INSERT INTO pending_blobs (key, created, alive) SELECT k, $2, $2 FROM unnest($1::text[]) k
           ON CONFLICT (key) DO UPDATE SET alive = EXCLUDED.alive""",
        keys,
        at,
    )


async def touch_pending(conn: Conn, keys: list[str], at: datetime) -> None:
    """The writer of these blobs is still alive (its heartbeat)."""
    if keys:
        await conn.execute("UPDATE pending_blobs SET alive = $2 WHERE key = ANY($1::text[])", keys, at)


async def clear_pending(conn: Conn, keys: list[str]) -> int:
    """Drop the records (their rows commit with this, or their bytes are deleted); returns how many
    were still there: fewer than asked means the sweeper took the rest and deletes their bytes."""
    if not keys:
        return 0
    rows = await conn.fetch("DELETE FROM pending_blobs WHERE key = ANY($1::text[]) RETURNING key", keys)
    return len(rows)


async def pending_among(conn: Conn, keys: list[str]) -> set[str]:
    """Those of `keys` still recorded as pending (their writer alive, or not swept yet)."""
    if not keys:
        return set()
    rows = await conn.fetch("SELECT key FROM pending_blobs WHERE key = ANY($1::text[])", keys)
    return {r["key"] for r in rows}


async def stale_pending(conn: asyncpg.Connection, before: datetime, limit: int) -> list[str]:
    """Pending blobs whose writer has been silent since `before`; locked, skipping those another
    sweeper or a committing writer holds."""
    rows = await conn.fetch(
        """SELECT key FROM pending_blobs WHERE alive < $1 ORDER BY alive LIMIT $2
           FOR UPDATE SKIP LOCKED""",
        before,
        limit,
    )
    return [r["key"] for r in rows]
