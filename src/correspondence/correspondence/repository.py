"""Every SQL statement of the correspondence slice."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

# Status numbers as stored (api.md §7.1).
INITIALIZED, READY_FOR_PUBLISH, PUBLISHED, FETCHED, READ = 0, 1, 2, 3, 4
CONFIRMED, PURGED_BY_RECIPIENT, PURGED_BY_ALTINN, ARCHIVED, RESERVED, FAILED = 6, 7, 8, 9, 10, 11
ATTACHMENTS_DOWNLOADED, FORWARDED = 12, 13

# One statement writes a whole Initialize (initialize-ceiling.md §2.2): the contact lookup, the
# reservation gate, the idempotency claim and every INSERT, set-based over the recipients.
# Idempotency keys are the service owner's ($14): another owner's same key is another key.
# Concurrent duplicates need no lock: the loser's `idem` inserts nothing, so nothing else is written.
# Attachments ($36 ids, $37 per-link expiry) are linked to every correspondence; while some await
# their malware scan ($38) the correspondences stay Initialized (publishing waits for them).
# The history's first rows are not stored (migration 0023): `initial_status` says what they are
# (see _HISTORY), so a correspondence costs one row fewer in three tables here.
INSERT_INITIALIZE = """
WITH r AS MATERIALIZED (
  SELECT x.*,
    CASE WHEN $27::smallint IS NULL OR x.reserved THEN NULL
         WHEN $35::bool THEN 0::smallint
         WHEN ($28::smallint = 0 AND x.email IS NOT NULL) OR ($28::smallint = 1 AND x.mobile IS NOT NULL)
           OR ($28::smallint >= 2 AND (x.email IS NOT NULL OR x.mobile IS NOT NULL)) THEN 0::smallint
         ELSE 1::smallint END AS main_status,
    CASE WHEN $27::smallint IS NULL OR x.reserved OR x.rem_oid IS NULL THEN NULL
         WHEN $35::bool THEN 0::smallint
         WHEN ($29::smallint = 0 AND x.email IS NOT NULL) OR ($29::smallint = 1 AND x.mobile IS NOT NULL)
           OR ($29::smallint >= 2 AND (x.email IS NOT NULL OR x.mobile IS NOT NULL)) THEN 0::smallint
         ELSE 1::smallint END AS rem_status
  FROM (SELECT t.ord, t.id, t.recipient, t.main_oid, t.rem_oid,
               CASE WHEN $34::bool THEN NULL ELSE c.email END AS email,
               CASE WHEN $34::bool THEN NULL ELSE c.mobile END AS mobile,
               COALESCE(c.reserved, false) AND NOT COALESCE($19::bool, false)
                 AND t.recipient LIKE 'urn:altinn:person:identifier-no:%' AS reserved
        FROM unnest($10::uuid[], $11::text[], $25::uuid[], $26::uuid[]) WITH ORDINALITY
               AS t(id, recipient, main_oid, rem_oid, ord)
        LEFT JOIN LATERAL (SELECT ct.email, ct.mobile, ct.reserved FROM contacts ct
                           WHERE ct.party = t.recipient OFFSET 0) c ON true) x),
gate AS (SELECT 1 AS ok WHERE NOT ($33::bool AND EXISTS (SELECT 1 FROM r WHERE r.reserved))),
idem AS (INSERT INTO idempotency_keys (owner_org, key, request_hash, correspondence_ids, created)
         SELECT $14, $23::uuid, $24::bytea, $10::uuid[], $32 FROM gate WHERE $23::uuid IS NOT NULL
         ON CONFLICT (owner_org, key) DO NOTHING RETURNING key),
go AS MATERIALIZED (SELECT 1 AS ok FROM gate WHERE $23::uuid IS NULL OR EXISTS (SELECT 1 FROM idem)),
ins_content AS (
  INSERT INTO correspondence_contents (id, language, message_title, message_summary, message_body,
    reply_options, property_list, external_references, notification, created)
  SELECT $1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9::jsonb, $32 FROM go),
ins_corr AS (
  INSERT INTO correspondences (id, content_id, resource_id, recipient, sender, service_owner_id,
    senders_reference, message_sender, requested_publish_time, due_date_time, ignore_reservation,
    is_confirmation_needed, is_confidential, allow_forwarding, idempotent_key, created, status,
    status_changed, initial_status)
  SELECT r.id, $1, $12, r.recipient, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $32, r.initial,
         $32, r.initial
  FROM (SELECT r.*, CASE WHEN r.reserved THEN 10 WHEN $38::bool THEN 0 ELSE 1 END::smallint AS initial
        FROM r) r CROSS JOIN go),
ins_links AS (
  INSERT INTO correspondence_attachments
    (correspondence_id, attachment_id, position, expiration_time, created)
  SELECT r.id, a.id, a.ord, a.exp, $32 FROM r CROSS JOIN go
  CROSS JOIN unnest($36::uuid[], $37::timestamptz[]) WITH ORDINALITY a(id, exp, ord)),
ins_orders AS (
  INSERT INTO notification_orders (id, correspondence_id, is_reminder, template, channel,
    requested_send_time, recipient, email_address, mobile_number, status, created)
  SELECT o.oid, r.id, o.rem, $27, o.ch, o.t, r.recipient, r.email, r.mobile, o.st, $32
  FROM r CROSS JOIN go
  CROSS JOIN LATERAL (VALUES (r.main_oid, false, $28::smallint, $30::timestamptz, r.main_status),
                             (r.rem_oid, true, $29::smallint, $31::timestamptz, r.rem_status))
                      o(oid, rem, ch, t, st)
  WHERE o.st IS NOT NULL),
ins_jobs AS (
  -- One publish job and one due-date job per request, naming all its correspondences.
  INSERT INTO jobs (task, ref_id, payload, run_at, created)
  SELECT 'correspondence.publish', NULL::uuid, jsonb_build_object('ids', jsonb_agg(r.id ORDER BY r.ord)),
         GREATEST($17, $32), $32
  FROM r CROSS JOIN go HAVING count(*) > 0
  UNION ALL
  SELECT 'correspondence.due', NULL::uuid, jsonb_build_object('ids', jsonb_agg(r.id ORDER BY r.ord)), $18, $32
  FROM r CROSS JOIN go
  WHERE $18::timestamptz IS NOT NULL AND NOT r.reserved HAVING count(*) > 0
  UNION ALL
  SELECT 'attachment.expire', a.id, NULL::jsonb, a.exp, $32
  FROM unnest($36::uuid[], $37::timestamptz[]) a(id, exp) CROSS JOIN go WHERE a.exp IS NOT NULL),
ins_events AS (
  -- The events outbox (events/outbox.py): one row per event type names all correspondences.
  INSERT INTO event_outbox (type, ids, created)
  SELECT e.type, e.ids, $32 FROM (
    SELECT 'correspondenceinitialized' AS type,
           array_agg(r.id ORDER BY r.ord) FILTER (WHERE NOT r.reserved) AS ids
    FROM r CROSS JOIN go
    UNION ALL
    SELECT 'correspondencereceiverreserved', array_agg(r.id ORDER BY r.ord) FILTER (WHERE r.reserved)
    FROM r CROSS JOIN go) e
  WHERE e.ids IS NOT NULL)
SELECT r.reserved, r.main_status, r.rem_status, EXISTS (SELECT 1 FROM go) AS written
FROM r ORDER BY r.ord
"""


async def insert_initialize(conn: asyncpg.Connection | asyncpg.Pool, args: list[Any]) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(INSERT_INITIALIZE, *args)
    return rows


async def find_idempotency_key(
    conn: asyncpg.Connection | asyncpg.Pool, owner_org: str, key: uuid.UUID
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT request_hash, correspondence_ids FROM idempotency_keys WHERE owner_org = $1 AND key = $2",
        owner_org,
        key,
    )
    return row


async def initialized_results(
    conn: asyncpg.Connection | asyncpg.Pool, ids: list[uuid.UUID]
) -> list[asyncpg.Record]:
    """What an Initialize answered for these correspondences: recipient, first status, orders."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT c.id, c.recipient,
             COALESCE(c.initial_status,
                      (SELECT max(s.status) FROM correspondence_statuses s
                       WHERE s.correspondence_id = c.id AND s.status IN (1, 10)
                         AND s.status_changed = c.created), 0) AS status,
             ARRAY(SELECT o.id FROM notification_orders o WHERE o.correspondence_id = c.id
                   ORDER BY o.is_reminder) AS order_ids,
             ARRAY(SELECT o.is_reminder FROM notification_orders o WHERE o.correspondence_id = c.id
                   ORDER BY o.is_reminder) AS order_reminders,
             ARRAY(SELECT o.status FROM notification_orders o WHERE o.correspondence_id = c.id
                   ORDER BY o.is_reminder) AS order_statuses
           FROM unnest($1::uuid[]) WITH ORDINALITY u(id, ord)
           JOIN correspondences c ON c.id = u.id
           ORDER BY u.ord""",
        ids,
    )
    return rows


# A correspondence's whole history: its status rows and its Fetched rows (migration 0022: a table of
# their own, as the reference keeps them). Both take ids from one sequence, so time-then-id orders
# them together. Before them come the rows Initialize no longer stores (migration 0023): with
# `initial_status` set, Initialized at `created`, then the status it was created in (ReadyForPublish
# or Reserved; none while attachments await their scan) at the same time. Ids -2 and -1 keep them
# first among rows of that instant; ids are never shown.
_HISTORY = """SELECT status, status_text, status_changed, id FROM correspondence_statuses
                WHERE correspondence_id = {cid}
              UNION ALL
              SELECT 3::smallint, 'Fetched', fetched, id FROM correspondence_fetches
                WHERE correspondence_id = {cid}
              UNION ALL
              SELECT i.status, i.txt, h.created, i.id FROM {implied}
              CROSS JOIN LATERAL (VALUES (0::smallint, 'Initialized', -2::bigint),
                (h.initial_status, CASE h.initial_status WHEN 10 THEN 'Reserved' ELSE 'ReadyForPublish' END,
                 -1::bigint)) i(status, txt, id)
              WHERE h.initial_status IS NOT NULL AND (i.id = -2 OR h.initial_status <> 0)"""
HISTORY_OF_C = _HISTORY.format(cid="c.id", implied="(SELECT c.initial_status, c.created) h")
HISTORY_OF_ID = _HISTORY.format(
    cid="$1", implied="(SELECT initial_status, created FROM correspondences WHERE id = $1) h"
)


# The statuses a history may hold without a stored row, and whether a correspondence had status `s`
# that way (see _HISTORY).
IMPLIED_STATUSES = frozenset({INITIALIZED, READY_FOR_PUBLISH, RESERVED})


def implied_status(c: str, s: str) -> str:
    return f"({c}.initial_status = {s} OR ({s} = 0 AND {c}.initial_status IS NOT NULL))"


@dataclass(frozen=True, slots=True)
class StatusRow:
    status: int
    status_text: str
    status_changed: datetime
    id: int


async def get_correspondence(
    conn: asyncpg.Connection | asyncpg.Pool, cid: uuid.UUID, *, lock: bool = False
) -> asyncpg.Record | None:
    sql = """SELECT c.*, ct.language, ct.message_title, ct.message_summary, ct.message_body,
                  ct.reply_options::text AS reply_options, ct.property_list::text AS property_list,
                  ct.external_references::text AS external_references,
                  ct.notification::text AS notification_request,
                  COALESCE(r.min_auth_level, 0) AS min_auth_level
           FROM correspondences c JOIN correspondence_contents ct ON ct.id = c.content_id
           LEFT JOIN resources r ON r.resource_id = c.resource_id
           WHERE c.id = $1"""
    row: asyncpg.Record | None = await conn.fetchrow(sql + (" FOR UPDATE OF c" if lock else ""), cid)
    return row


@dataclass(frozen=True, slots=True)
class SelfFetch:
    """A caller who may be the correspondence's recipient party itself, for get_for_overviews: the
    Fetched row is then written by the read's own statement. `recipient` is the caller's party
    (None: no read scope, so never a recipient); `sender_org` the organisation it may act as sender
    for (the sender role comes first); `party` is written on the row."""

    recipient: str | None
    party: str | None
    auth_level: int
    sender_org: str | None
    at: datetime
    unless_since: datetime


# Statuses in which a recipient may see a correspondence (behaviour.md §2.2; Reserved is
# included, as the reference does).
AVAILABLE_TO_RECIPIENT = frozenset({2, 3, 4, 5, 6, 9, 10, 12, 13})
_AVAILABLE = ", ".join(str(s) for s in sorted(AVAILABLE_TO_RECIPIENT))

_OVERVIEWS = f"""WITH u AS (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::timestamptz[],
                       $7::timestamptz[], $8::bool[])
    WITH ORDINALITY
    AS u(cid, f_recipient, f_party, f_auth_level, f_sender_org, f_at, f_since, f_insert, f_ord)),
c AS MATERIALIZED (
  SELECT u.f_ord, u.f_party, u.f_at, u.f_since, u.f_insert,
         c.*, ct.language, ct.message_title, ct.message_summary, ct.message_body,
         ct.reply_options::text AS reply_options, ct.property_list::text AS property_list,
         ct.external_references::text AS external_references,
         ct.notification::text AS notification_request,
         COALESCE(r.min_auth_level, 0) AS min_auth_level,
         h.statuses AS h_statuses, h.texts AS h_texts, h.changed AS h_changed, h.ids AS h_ids,
         o.ids AS o_ids, o.reminders AS o_reminders,
         EXISTS (SELECT 1 FROM correspondence_attachments l WHERE l.correspondence_id = c.id)
           AS has_attachments,
         -- access.resolve's recipient rule for the party itself, and view._check_visible's:
         -- true exactly when the overview is answered to this caller as its recipient.
         (u.f_recipient IS NOT NULL AND c.recipient = u.f_recipient
          AND c.service_owner_id IS DISTINCT FROM u.f_sender_org
          AND u.f_auth_level >= COALESCE(r.min_auth_level, 0)
          AND c.status IN ({_AVAILABLE})) AS self_fetch
  FROM u JOIN correspondences c ON c.id = u.cid
  JOIN correspondence_contents ct ON ct.id = c.content_id
  LEFT JOIN resources r ON r.resource_id = c.resource_id
  CROSS JOIN LATERAL (
    SELECT array_agg(s.status ORDER BY s.status_changed, s.id) AS statuses,
           array_agg(s.status_text ORDER BY s.status_changed, s.id) AS texts,
           array_agg(s.status_changed ORDER BY s.status_changed, s.id) AS changed,
           array_agg(s.id ORDER BY s.status_changed, s.id) AS ids
    FROM ({HISTORY_OF_C}) s) h
  CROSS JOIN LATERAL (
    SELECT array_agg(n.id ORDER BY n.is_reminder, n.created, n.id) AS ids,
           array_agg(n.is_reminder ORDER BY n.is_reminder, n.created, n.id) AS reminders
    FROM notification_orders n WHERE n.correspondence_id = c.id) o),
fetched AS (
  -- The debounce (record_fetched_many): not when the same party fetched it after f_since. Rows of
  -- this statement do not see each other: of one correspondence and party only one has f_insert.
  INSERT INTO correspondence_fetches (correspondence_id, party, fetched)
  SELECT c.id, c.f_party, c.f_at FROM c
  WHERE c.self_fetch AND c.f_insert AND NOT EXISTS (
    SELECT 1 FROM correspondence_fetches f
    WHERE f.correspondence_id = c.id AND f.fetched > c.f_since AND f.party IS NOT DISTINCT FROM c.f_party))
SELECT * FROM c"""


async def get_for_overviews(
    conn: asyncpg.Connection | asyncpg.Pool, items: list[tuple[uuid.UUID, SelfFetch | None, bool]]
) -> list[asyncpg.Record | None]:
    """get_correspondence's row with what the overview shows besides, for many overviews in one round
    trip: the status history (h_* arrays, in order; read before the statement's own Fetched rows),
    the notification orders (o_* arrays) and whether any attachment is linked (the attachment slice
    lists them). Items are (id, caller, whether its Fetched row may be written).

    The same statement (and commit) writes the Fetched row of each caller that reads as the
    recipient party itself (`self_fetch` in its row). Callers reading through a delegation get
    `self_fetch` false and record it themselves."""
    fetches = [f for _, f, _ in items]
    rows = await conn.fetch(
        _OVERVIEWS,
        [cid for cid, _, _ in items],
        [f.recipient if f is not None else None for f in fetches],
        [f.party if f is not None else None for f in fetches],
        [f.auth_level if f is not None else 0 for f in fetches],
        [f.sender_org if f is not None else None for f in fetches],
        [f.at if f is not None else None for f in fetches],
        [f.unless_since if f is not None else None for f in fetches],
        [insert for _, _, insert in items],
    )
    out: list[asyncpg.Record | None] = [None] * len(items)  # None: no such correspondence
    for row in rows:
        out[row["f_ord"] - 1] = row
    return out


async def get_for_overview(
    conn: asyncpg.Connection | asyncpg.Pool, cid: uuid.UUID, fetch: SelfFetch | None = None
) -> asyncpg.Record | None:
    """get_for_overviews for one."""
    return (await get_for_overviews(conn, [(cid, fetch, True)]))[0]


def history_of(row: asyncpg.Record) -> list[StatusRow]:
    """The status history get_for_overview carries."""
    columns = (row["h_statuses"], row["h_texts"], row["h_changed"], row["h_ids"])
    return [StatusRow(*values) for values in zip(*(c or () for c in columns), strict=True)]


def orders_of(row: asyncpg.Record) -> list[tuple[uuid.UUID, bool]]:
    """The notification orders (id, is reminder) get_for_overview carries."""
    return list(zip(row["o_ids"] or (), row["o_reminders"] or (), strict=True))


async def delegation(conn: asyncpg.Connection | asyncpg.Pool, person: str, party: str) -> bool | None:
    """None without a delegation; else whether it includes confidential correspondence."""
    confidential: bool | None = await conn.fetchval(
        "SELECT confidential FROM delegations WHERE person = $1 AND party = $2", person, party
    )
    return confidential


async def has_status(conn: asyncpg.Connection | asyncpg.Pool, cid: uuid.UUID, status: int) -> bool:
    """Whether the correspondence ever had this status (Fetched rows have a table of their own)."""
    if status == FETCHED:
        found = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM correspondence_fetches WHERE correspondence_id = $1)", cid
        )
    else:
        found = await conn.fetchval(
            f"""SELECT EXISTS (SELECT 1 FROM correspondence_statuses
                               WHERE correspondence_id = $1 AND status = $2)
                    OR EXISTS (SELECT 1 FROM correspondences c
                               WHERE c.id = $1 AND {implied_status("c", "$2::smallint")})""",
            cid,
            status,
        )
    return bool(found)


async def record_fetched(
    conn: asyncpg.Connection | asyncpg.Pool,
    cid: uuid.UUID,
    party: str | None,
    at: datetime,
    *,
    unless_since: datetime | None,
) -> None:
    """A Fetched row, unless the same party fetched it after `unless_since` (the debounce).
    Fetched never changes the correspondence row itself."""
    await record_fetched_many(conn, [(cid, party, at, unless_since)])


async def record_fetched_many(
    conn: asyncpg.Connection | asyncpg.Pool,
    items: list[tuple[uuid.UUID, str | None, datetime, datetime | None]],
) -> None:
    """record_fetched for many (correspondence, party, at, unless_since) at once: one statement.
    The debounce sees the rows committed before it, not the others of the same statement: callers
    pass one item per correspondence and party (kit/batch.py, use_cases/view.py)."""
    await conn.execute(
        """INSERT INTO correspondence_fetches (correspondence_id, party, fetched)
           SELECT u.cid, u.party, u.at
           FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[]) u(cid, party, at, since)
           WHERE u.since IS NULL OR NOT EXISTS (
             SELECT 1 FROM correspondence_fetches f
             WHERE f.correspondence_id = u.cid AND f.fetched > u.since
               AND f.party IS NOT DISTINCT FROM u.party)""",
        [i[0] for i in items],
        [i[1] for i in items],
        [i[2] for i in items],
        [i[3] for i in items],
    )


async def get_status_history(conn: asyncpg.Connection | asyncpg.Pool, cid: uuid.UUID) -> list[StatusRow]:
    rows = await conn.fetch(
        f"""SELECT status, status_text, status_changed, id FROM ({HISTORY_OF_ID}) s
           ORDER BY status_changed, id""",
        cid,
    )
    return [StatusRow(r["status"], r["status_text"], r["status_changed"], r["id"]) for r in rows]


async def get_party_name(conn: asyncpg.Connection | asyncpg.Pool, party: str) -> str | None:
    name: str | None = await conn.fetchval("SELECT name FROM parties WHERE party = $1", party)
    return name


# --- forwarding (api.md §3.11) ------------------------------------------------------------------

FORWARD_TASK = "correspondence.forward"
_FORWARD_OPEN = "status <> 'Email_Failed'"  # a finally failed forward may be made again


async def forwarded_to(conn: asyncpg.Connection | asyncpg.Pool, cid: uuid.UUID, address: str) -> bool:
    found: bool = await conn.fetchval(
        f"""SELECT EXISTS (SELECT 1 FROM correspondence_forwardings
                           WHERE correspondence_id = $1 AND email_address = $2 AND {_FORWARD_OPEN})""",
        cid,
        address,
    )
    return found


async def insert_forwarding(
    conn: asyncpg.Connection,
    *,
    forwarding_id: uuid.UUID,
    cid: uuid.UUID,
    at: datetime,
    by: str,
    text: str | None,
    address: str,
    as_given: str,
    status: str,
) -> bool:
    """The forward and its sending job, in the caller's transaction; False when the address
    already has one (a concurrent duplicate: the unique index decides)."""
    row = await conn.fetchrow(
        f"""WITH ins AS (
              INSERT INTO correspondence_forwardings (id, correspondence_id, forwarded_on, forwarded_by,
                forwarding_text, email_address, address_as_given, status, next_attempt, created, updated)
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $3, $3, $3)
              ON CONFLICT (correspondence_id, email_address) WHERE {_FORWARD_OPEN} DO NOTHING
              RETURNING id),
            job AS (INSERT INTO jobs (task, ref_id, payload, run_at, created)
                    SELECT '{FORWARD_TASK}', id, NULL, $3, $3 FROM ins)
            SELECT id FROM ins""",
        forwarding_id,
        cid,
        at,
        by,
        text,
        address,
        as_given,
        status,
    )
    return row is not None


async def claim_forwardings(
    pool: asyncpg.Pool,
    ids: list[uuid.UUID],
    now: datetime,
    until: datetime,
    *,
    sending: str,
    claimable: list[str],
) -> list[asyncpg.Record]:
    """Mark due forwards as being sent and commit that before anything is sent: from then on no
    job, re-run or other worker sends them again."""
    rows: list[asyncpg.Record] = await pool.fetch(
        """UPDATE correspondence_forwardings
           SET status = $4, attempts = attempts + 1, claimed_until = $3, updated = $2
           WHERE id = ANY($1::uuid[]) AND status = ANY($5::text[]) AND next_attempt <= $2
           RETURNING id, correspondence_id, forwarded_on, forwarded_by, forwarding_text, address_as_given,
                     attempts""",
        ids,
        now,
        until,
        sending,
        claimable,
    )
    return rows


async def record_forward_outcome(
    conn: asyncpg.Connection,
    forwarding_id: uuid.UUID,
    *,
    status: str,
    error: str | None,
    next_attempt: datetime,
    sent: datetime | None,
    left_out: int | None,
    at: datetime,
) -> None:
    await conn.execute(
        """UPDATE correspondence_forwardings
           SET status = $2, last_error = $3, next_attempt = $4, sent = $5, attachments_left_out = $6,
               claimed_until = NULL, updated = $7
           WHERE id = $1""",
        forwarding_id,
        status,
        error,
        next_attempt,
        sent,
        left_out,
        at,
    )


async def give_up_stale_forwardings(
    conn: asyncpg.Connection, ids: list[uuid.UUID], now: datetime, *, sending: str, failed: str, reason: str
) -> None:
    """Forwards left being sent by a worker that died mid-send: never sent again (at most once)."""
    await conn.execute(
        """UPDATE correspondence_forwardings
           SET status = $4, last_error = $5, claimed_until = NULL, updated = $2
           WHERE id = ANY($1::uuid[]) AND status = $3 AND claimed_until < $2""",
        ids,
        now,
        sending,
        failed,
        reason,
    )


async def unfinished_forwardings(
    conn: asyncpg.Connection, ids: list[uuid.UUID], *, sending: str, claimable: list[str]
) -> tuple[list[uuid.UUID], datetime | None]:
    """Forwards still waiting (for a retry, or being sent), and when to look again."""
    rows = await conn.fetch(
        """SELECT id, CASE WHEN status = $2 THEN claimed_until ELSE next_attempt END AS due
           FROM correspondence_forwardings
           WHERE id = ANY($1::uuid[]) AND (status = $2 OR status = ANY($3::text[]))""",
        ids,
        sending,
        claimable,
    )
    if not rows:
        return [], None
    return [r["id"] for r in rows], min(r["due"] for r in rows)


async def search_ids(
    conn: asyncpg.Connection | asyncpg.Pool, branches: list[str], args: list[Any], offset: int, limit: int
) -> tuple[list[uuid.UUID], int, set[str]]:
    """One page of ids, newest first, the total, and the resources of the page's rows. Each branch
    is a WHERE clause built from fixed text and numbered parameters only (see use_cases/search.py)."""
    n = len(args)
    order = "ORDER BY requested_publish_time DESC, id DESC"
    if len(branches) == 1:
        where = branches[0]
        page_sql = (
            f"SELECT id, resource_id, count(*) OVER () AS total FROM correspondences WHERE {where} "
            f"{order} LIMIT ${n + 1} OFFSET ${n + 2}"
        )
        count_sql = f"SELECT count(*) FROM correspondences WHERE {where}"
    else:
        union = " UNION ".join(
            f"(SELECT id, requested_publish_time, resource_id FROM correspondences WHERE {b})"
            for b in branches
        )
        page_sql = (
            f"SELECT id, resource_id, count(*) OVER () AS total FROM ({union}) u {order} "
            f"LIMIT ${n + 1} OFFSET ${n + 2}"
        )
        count_sql = f"SELECT count(*) FROM ({union}) u"
    rows = await conn.fetch(page_sql, *args, limit, offset)
    if rows:
        return [r["id"] for r in rows], int(rows[0]["total"]), {r["resource_id"] for r in rows}
    total: int = await conn.fetchval(count_sql, *args) if offset > 0 else 0
    return [], total, set()


# --- due dates ------------------------------------------------------------------------------------


async def record_due_dates(
    conn: asyncpg.Connection, ids: list[uuid.UUID], at: datetime
) -> list[asyncpg.Record]:
    """At the due date: note whether it was never read, and never confirmed when that was asked."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """UPDATE correspondences SET due_checked = $2,
             never_read = (read_at IS NULL),
             never_confirmed = (is_confirmation_needed AND confirmed_at IS NULL)
           WHERE id = ANY($1::uuid[]) AND due_checked IS NULL AND status NOT IN (0, 1, 7, 8, 10, 11)
             -- A paused resource's due dates wait: resuming it enqueues them again (recall/).
             AND NOT EXISTS (SELECT 1 FROM resource_pauses p
                             WHERE p.resource_id = correspondences.resource_id)
           RETURNING id, never_read, never_confirmed""",
        ids,
        at,
    )
    return rows


# --- publishing ---------------------------------------------------------------------------------


async def lock_for_publish(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        # The contact registry is looked up row by row (LATERAL … OFFSET 0): joined as a set, the
        # planner hashed the whole registry for every batch (60,000 persons: 32 of a 500-row
        # batch's 40 ms), and a national registry is millions.
        """SELECT c.id, c.recipient, c.ignore_reservation,
                  COALESCE(ct.reserved, false) AS reserved,
                  c.initial_status = 1 OR EXISTS (SELECT 1 FROM correspondence_statuses s
                          WHERE s.correspondence_id = c.id AND s.status = 1) AS ready,
                  EXISTS (SELECT 1 FROM correspondence_statuses s WHERE s.correspondence_id = c.id
                          AND s.status IN (2, 7, 8, 11)) AS settled,
                  NOT EXISTS (SELECT 1 FROM correspondence_attachments l JOIN attachments a
                                ON a.id = l.attachment_id
                              WHERE l.correspondence_id = c.id AND a.status IN (0, 1, 4))
                    AS attachments_ready,
                  EXISTS (SELECT 1 FROM resource_pauses p WHERE p.resource_id = c.resource_id) AS paused
           FROM correspondences c
           LEFT JOIN LATERAL (SELECT ct.reserved FROM contacts ct WHERE ct.party = c.recipient OFFSET 0) ct
             ON true
           WHERE c.id = ANY($1::uuid[])
           ORDER BY c.id
           FOR UPDATE OF c""",
        ids,
    )
    return rows


async def append_statuses(
    conn: asyncpg.Connection,
    ids: list[uuid.UUID],
    statuses: list[int],
    texts: list[str],
    at: datetime,
    party: str | None = None,
) -> None:
    """Append history rows (in order; Fetched rows go through record_fetched) and move each
    correspondence's current status to the last lifecycle status given: AttachmentsDownloaded and
    Forwarded never become current, and a purge is terminal (DESIGN decision 3)."""
    if not ids:
        return
    await conn.execute(
        """WITH u AS (SELECT * FROM unnest($1::uuid[], $2::smallint[], $3::text[]) WITH ORDINALITY
                      AS u(id, st, txt, ord)),
           ins AS (INSERT INTO correspondence_statuses
                     (correspondence_id, status, status_text, status_changed, party)
                   SELECT u.id, u.st, u.txt, $4, $5 FROM u ORDER BY u.ord),
           f AS (SELECT u.id, bool_or(u.st = 4) AS read, bool_or(u.st = 6) AS confirmed,
                        (array_agg(u.st ORDER BY u.ord DESC)
                          FILTER (WHERE u.st NOT IN (3, 12, 13)))[1] AS last
                 FROM u GROUP BY u.id)
           UPDATE correspondences c SET
             status = CASE WHEN c.status IN (7, 8) OR f.last IS NULL THEN c.status ELSE f.last END,
             status_changed = CASE WHEN c.status IN (7, 8) OR f.last IS NULL THEN c.status_changed
                                   ELSE $4 END,
             read_at = CASE WHEN f.read THEN COALESCE(c.read_at, $4) ELSE c.read_at END,
             confirmed_at = CASE WHEN f.confirmed THEN COALESCE(c.confirmed_at, $4) ELSE c.confirmed_at END
           -- Only rows that change: a Fetched (or AttachmentsDownloaded) alone leaves the row as it
           -- is, and a no-op UPDATE would still write a row version, clear the page's all-visible bit
           -- and so turn the recipients' index-only inbox scans into heap fetches (bench/search.py).
           FROM f WHERE c.id = f.id AND (f.last IS NOT NULL OR f.read OR f.confirmed)""",
        ids,
        statuses,
        texts,
        at,
        party,
    )


# The publish job's one write for a batch: the history rows (ReadyForPublish where it was not
# yet, then Published or Failed), the current status and publish time in one row version per
# correspondence (two UPDATEs wrote two, each with its index entries), and the contents' words for
# the web inbox's search (migration 0020: written here rather than by Initialize, once per content;
# a bulk request's correspondences share one). The rows were locked by lock_for_publish.
RECORD_PUBLISH = """
WITH u AS (SELECT * FROM unnest($1::uuid[], $2::smallint[], $3::text[]) WITH ORDINALITY
           AS u(id, st, txt, ord)),
ins AS (INSERT INTO correspondence_statuses (correspondence_id, status, status_text, status_changed)
        SELECT u.id, u.st, u.txt, $4 FROM u ORDER BY u.ord),
f AS (SELECT u.id, (array_agg(u.st ORDER BY u.ord DESC))[1] AS last FROM u GROUP BY u.id),
upd AS (UPDATE correspondences c SET status = f.last, status_changed = $4,
          published = CASE WHEN f.last = 2 THEN $4 ELSE c.published END
        FROM f WHERE c.id = f.id
        RETURNING c.content_id, f.last)
INSERT INTO content_words (content_id, words)
SELECT ct.id, to_tsvector('simple', ct.message_title || ' ' || ct.message_summary)
FROM correspondence_contents ct WHERE ct.id IN (SELECT content_id FROM upd WHERE last = 2)
ON CONFLICT (content_id) DO NOTHING"""


async def record_publish(
    conn: asyncpg.Connection, ids: list[uuid.UUID], statuses: list[int], texts: list[str], at: datetime
) -> None:
    """`ids`/`statuses`/`texts`: the history rows in order; each correspondence's last one (Published
    or Failed) becomes its current status."""
    if ids:
        await conn.execute(RECORD_PUBLISH, ids, statuses, texts, at)


# Many Initialize requests in one statement (use_cases/group_write.py): each request's values are
# arrays indexed by its number `n` (1-based); its recipients name it in `qn`. Only requests without
# an idempotency key or attachments come here, so neither the claim nor the links are written;
# otherwise every row is what INSERT_INITIALIZE writes for the request, and a request whose single
# recipient is reserved writes nothing (`go` leaves it out), as there.
INSERT_INITIALIZE_MANY = """
WITH q AS MATERIALIZED (
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                       $13::text[], $14::text[], $15::timestamptz[], $16::timestamptz[], $17::bool[],
                       $18::bool[], $19::bool[], $20::bool[], $21::smallint[], $22::smallint[],
                       $23::smallint[], $24::timestamptz[], $25::timestamptz[], $26::timestamptz[],
                       $27::bool[], $28::bool[], $29::bool[])
    WITH ORDINALITY AS q(content_id, language, title, summary, body, reply_options, property_list,
                         external_references, notification, resource_id, sender, owner_org, senders_reference,
                         message_sender, publish_time, due, ignore_reservation, confirmation, confidential,
                         forwarding, template, channel, rem_channel, main_time, reminder_time, now, single,
                         override, custom, n)),
r AS MATERIALIZED (
  SELECT x.*,
    CASE WHEN x.template IS NULL OR x.reserved THEN NULL
         WHEN x.custom THEN 0::smallint
         WHEN (x.channel = 0 AND x.email IS NOT NULL) OR (x.channel = 1 AND x.mobile IS NOT NULL)
           OR (x.channel >= 2 AND (x.email IS NOT NULL OR x.mobile IS NOT NULL)) THEN 0::smallint
         ELSE 1::smallint END AS main_status,
    CASE WHEN x.template IS NULL OR x.reserved OR x.rem_oid IS NULL THEN NULL
         WHEN x.custom THEN 0::smallint
         WHEN (x.rem_channel = 0 AND x.email IS NOT NULL) OR (x.rem_channel = 1 AND x.mobile IS NOT NULL)
           OR (x.rem_channel >= 2 AND (x.email IS NOT NULL OR x.mobile IS NOT NULL)) THEN 0::smallint
         ELSE 1::smallint END AS rem_status
  FROM (SELECT t.ord, t.id, t.recipient, t.main_oid, t.rem_oid, q.*,
               CASE WHEN q.override THEN NULL ELSE c.email END AS email,
               CASE WHEN q.override THEN NULL ELSE c.mobile END AS mobile,
               COALESCE(c.reserved, false) AND NOT COALESCE(q.ignore_reservation, false)
                 AND t.recipient LIKE 'urn:altinn:person:identifier-no:%' AS reserved
        FROM unnest($30::int[], $31::uuid[], $32::text[], $33::uuid[], $34::uuid[]) WITH ORDINALITY
               AS t(qn, id, recipient, main_oid, rem_oid, ord)
        JOIN q ON q.n = t.qn
        LEFT JOIN LATERAL (SELECT ct.email, ct.mobile, ct.reserved FROM contacts ct
                           WHERE ct.party = t.recipient OFFSET 0) c ON true) x),
go AS MATERIALIZED (
  SELECT q.n FROM q WHERE NOT (q.single AND EXISTS (SELECT 1 FROM r WHERE r.n = q.n AND r.reserved))),
w AS MATERIALIZED (SELECT r.* FROM r JOIN go ON go.n = r.n),
ins_content AS (
  INSERT INTO correspondence_contents (id, language, message_title, message_summary, message_body,
    reply_options, property_list, external_references, notification, created)
  SELECT q.content_id, q.language, q.title, q.summary, q.body, q.reply_options::jsonb, q.property_list::jsonb,
         q.external_references::jsonb, q.notification::jsonb, q.now
  FROM q JOIN go ON go.n = q.n),
ins_corr AS (
  INSERT INTO correspondences (id, content_id, resource_id, recipient, sender, service_owner_id,
    senders_reference, message_sender, requested_publish_time, due_date_time, ignore_reservation,
    is_confirmation_needed, is_confidential, allow_forwarding, idempotent_key, created, status,
    status_changed, initial_status)
  SELECT w.id, w.content_id, w.resource_id, w.recipient, w.sender, w.owner_org, w.senders_reference,
         w.message_sender, w.publish_time, w.due, w.ignore_reservation, w.confirmation, w.confidential,
         w.forwarding, NULL::uuid, w.now, w.initial, w.now, w.initial
  FROM (SELECT w.*, CASE WHEN w.reserved THEN 10 ELSE 1 END::smallint AS initial FROM w) w),
ins_orders AS (
  INSERT INTO notification_orders (id, correspondence_id, is_reminder, template, channel,
    requested_send_time, recipient, email_address, mobile_number, status, created)
  SELECT o.oid, w.id, o.rem, w.template, o.ch, o.t, w.recipient, w.email, w.mobile, o.st, w.now
  FROM w
  CROSS JOIN LATERAL (VALUES (w.main_oid, false, w.channel, w.main_time, w.main_status),
                             (w.rem_oid, true, w.rem_channel, w.reminder_time, w.rem_status))
                      o(oid, rem, ch, t, st)
  WHERE o.st IS NOT NULL),
ins_jobs AS (
  -- One publish job and one due-date job per request, naming all its correspondences.
  INSERT INTO jobs (task, ref_id, payload, run_at, created)
  SELECT 'correspondence.publish', NULL::uuid, jsonb_build_object('ids', jsonb_agg(w.id ORDER BY w.ord)),
         GREATEST(min(w.publish_time), min(w.now)), min(w.now)
  FROM w GROUP BY w.n
  UNION ALL
  SELECT 'correspondence.due', NULL::uuid, jsonb_build_object('ids', jsonb_agg(w.id ORDER BY w.ord)),
         min(w.due), min(w.now)
  FROM w WHERE w.due IS NOT NULL AND NOT w.reserved GROUP BY w.n),
ins_events AS (
  INSERT INTO event_outbox (type, ids, created)
  SELECT e.type, e.ids, e.created FROM (
    SELECT 'correspondenceinitialized' AS type,
           array_agg(w.id ORDER BY w.ord) FILTER (WHERE NOT w.reserved) AS ids, min(w.now) AS created
    FROM w GROUP BY w.n
    UNION ALL
    SELECT 'correspondencereceiverreserved', array_agg(w.id ORDER BY w.ord) FILTER (WHERE w.reserved),
           min(w.now)
    FROM w GROUP BY w.n) e
  WHERE e.ids IS NOT NULL)
SELECT r.n, r.reserved, r.main_status, r.rem_status, EXISTS (SELECT 1 FROM go WHERE go.n = r.n) AS written
FROM r ORDER BY r.n, r.ord
"""


async def insert_initialize_many(
    conn: asyncpg.Connection | asyncpg.Pool, args: list[Any]
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(INSERT_INITIALIZE_MANY, *args)
    return rows
