"""Every SQL statement of the web slice: list pages for the inbox and the sent view.

Access is decided before these run (use_cases/access.py's rules, see web/pages.py); the statements
only take the party already allowed. Lists page by keyset on (requested_publish_time, id) — the
order and the columns of the list indexes of migration 0002 — so page 4,000 costs what page 1
costs, and totals are counted only up to a cap.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from correspondence.correspondence.use_cases.search import HIDDEN_FROM_RECIPIENT
from correspondence.kit.text import ORG_URN

ARCHIVED = 9
COUNT_CAP = 10_000
# The text a search looks in; the same expression as the index of migration 0007.
# A content's words (its title and summary, 'simple' configuration) are written to content_words
# when one of its correspondences is published (migration 0020): recipients see nothing earlier.


@dataclass(frozen=True, slots=True)
class Cursor:
    """A row's place in the newest-first order."""

    at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        return f"{self.at.isoformat()}_{self.id}"

    @staticmethod
    def decode(value: str | None) -> Cursor | None:
        if not value:
            return None
        at, sep, cid = value.rpartition("_")
        try:
            parsed = datetime.fromisoformat(at)
            if not sep or parsed.tzinfo is None:
                return None
            # As UTC here, where an instant beyond year 9999 or before year 1 can be refused, not
            # in the driver's encoding (an OverflowError, a 500).
            return Cursor(parsed.astimezone(UTC), uuid.UUID(cid))
        except (ValueError, OverflowError):
            return None


@dataclass(frozen=True, slots=True)
class InboxFilter:
    text: str | None = None  # a tsquery built by web/pages.py from words only
    content_ids: list[uuid.UUID] | None = None  # instead of `text`: the contents that match it
    sender: str | None = None  # organisation number of the service owner
    resource: str | None = None
    status: int | None = None  # None: everything visible but Archived; -1: everything visible
    from_time: datetime | None = None
    to_time: datetime | None = None  # exclusive
    unread: bool = False
    hidden_resources: list[str] = field(default_factory=list)  # above the caller's authentication level
    hide_confidential: bool = False  # a person whose delegation does not include confidential post


async def plan_per_query(conn: asyncpg.Connection) -> None:
    """Plan the list statements for their values, in this transaction only. The pool forces generic
    plans (kit/db.py), which suit the API's fixed-shape statements; a list's best plan depends on the
    values (a rare or a common search word, a recipient with 10 or 100,000 rows), and a generic plan
    measured 0.7-1.4 s for a search that a custom plan answers in milliseconds (bench/inbox.py)."""
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")


def _inbox_where(party: str, f: InboxFilter, args: list[Any]) -> str:
    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    hidden = ", ".join(str(s) for s in HIDDEN_FROM_RECIPIENT)
    where = f"c.recipient = {arg(party)} AND c.status NOT IN ({hidden})"
    if f.status is None:
        where += f" AND c.status <> {ARCHIVED}"
    elif f.status >= 0:
        where += f" AND c.status = {arg(f.status)}"
    if f.resource is not None:
        where += f" AND c.resource_id = {arg(f.resource)}"
    if f.sender is not None:
        where += f" AND c.service_owner_id = {arg(f.sender)}"
    if f.from_time is not None:
        where += f" AND c.requested_publish_time >= {arg(f.from_time)}"
    if f.to_time is not None:
        where += f" AND c.requested_publish_time < {arg(f.to_time)}"
    if f.unread:
        where += " AND c.read_at IS NULL"
    if f.hidden_resources:
        where += f" AND c.resource_id <> ALL({arg(f.hidden_resources)}::text[])"
    if f.hide_confidential:
        where += " AND NOT c.is_confidential"
    if f.content_ids is not None:
        where += f" AND c.content_id = ANY({arg(f.content_ids)}::uuid[])"
    elif f.text is not None:
        where += (
            " AND c.content_id IN (SELECT w.content_id FROM content_words w"
            f" WHERE w.words @@ to_tsquery('simple', {arg(f.text)}))"
        )
    return where


RARE_CONTENTS = 2000


async def matching_contents(conn: asyncpg.Connection | asyncpg.Pool, text: str) -> list[uuid.UUID] | None:
    """The content rows that match a search, when there are fewer than RARE_CONTENTS (else None).

    A rare word is then found through correspondences_by_content (migration 0007), a few index
    probes; a common one by walking the recipient's list, where matches come soon. The planner cannot
    tell the two apart itself: it guesses a prefix query's selectivity (2 %), so a word in 0.2 % of
    the contents was answered by reading the recipient's whole list."""
    rows = await conn.fetch(
        f"""SELECT w.content_id AS id FROM content_words w
            WHERE w.words @@ to_tsquery('simple', $1) LIMIT {RARE_CONTENTS}""",
        text,
    )
    return [r["id"] for r in rows] if len(rows) < RARE_CONTENTS else None


async def inbox_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    party: str,
    f: InboxFilter,
    *,
    before: Cursor | None,
    after: Cursor | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Up to `limit` rows older than `before` (or newer than `after`), newest first."""
    args: list[Any] = []
    where = _inbox_where(party, f, args)
    order = "DESC"
    if before is not None:
        args += [before.at, before.id]
        where += f" AND (c.requested_publish_time, c.id) < (${len(args) - 1}, ${len(args)})"
    elif after is not None:
        args += [after.at, after.id]
        where += f" AND (c.requested_publish_time, c.id) > (${len(args) - 1}, ${len(args)})"
        order = "ASC"
    args.append(limit)
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT c.id, c.resource_id, c.service_owner_id, c.message_sender, c.recipient,
                  c.requested_publish_time, c.published, c.due_date_time, c.status, c.read_at,
                  c.is_confirmation_needed, c.confirmed_at,
                  ct.message_title, ct.message_summary, p.name AS sender_name
           FROM (SELECT * FROM correspondences c WHERE {where}
                 ORDER BY c.requested_publish_time {order}, c.id {order} LIMIT ${len(args)}) c
           JOIN correspondence_contents ct ON ct.id = c.content_id
           LEFT JOIN parties p ON p.party = '{ORG_URN}' || c.service_owner_id
           ORDER BY c.requested_publish_time DESC, c.id DESC""",
        *args,
    )
    return rows


async def inbox_count(conn: asyncpg.Connection | asyncpg.Pool, party: str, f: InboxFilter) -> int:
    """How many rows match, counted up to COUNT_CAP + 1 (shown as "more than 10,000")."""
    args: list[Any] = []
    where = _inbox_where(party, f, args)
    count: int = await conn.fetchval(
        f"SELECT count(*) FROM (SELECT 1 FROM correspondences c WHERE {where} LIMIT {COUNT_CAP + 1}) x",
        *args,
    )
    return count


async def inbox_resources(conn: asyncpg.Connection | asyncpg.Pool, party: str) -> list[asyncpg.Record]:
    """The resources (and their owners) this party has correspondence from, for the filters: a
    skip scan over the recipient list index, one probe per distinct resource."""
    hidden = ", ".join(str(s) for s in HIDDEN_FROM_RECIPIENT)
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""WITH RECURSIVE r(resource_id) AS (
              (SELECT resource_id FROM correspondences
               WHERE recipient = $1 AND status NOT IN ({hidden}) ORDER BY resource_id LIMIT 1)
              UNION ALL
              SELECT (SELECT c.resource_id FROM correspondences c
                      WHERE c.recipient = $1 AND c.resource_id > r.resource_id
                        AND c.status NOT IN ({hidden})
                      ORDER BY c.resource_id LIMIT 1)
              FROM r WHERE r.resource_id IS NOT NULL)
           SELECT r.resource_id, res.title, res.owner_org, p.name AS owner_name
           FROM r LEFT JOIN resources res ON res.resource_id = r.resource_id
           LEFT JOIN parties p ON p.party = '{ORG_URN}' || res.owner_org
           WHERE r.resource_id IS NOT NULL ORDER BY r.resource_id""",
        party,
    )
    return rows


async def delegations_of(conn: asyncpg.Connection | asyncpg.Pool, person: str) -> list[asyncpg.Record]:
    """The organisations a person may act for, with their names when the party registry has them."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT d.party, p.name FROM delegations d LEFT JOIN parties p ON p.party = d.party
           WHERE d.person = $1 ORDER BY d.party""",
        person,
    )
    return rows


async def party_name(conn: asyncpg.Connection | asyncpg.Pool, party: str) -> str | None:
    name: str | None = await conn.fetchval("SELECT name FROM parties WHERE party = $1", party)
    return name


async def owned_resources(conn: asyncpg.Connection | asyncpg.Pool, org: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT resource_id, title FROM resources WHERE owner_org = $1 ORDER BY resource_id", org
    )
    return rows


async def sent_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    org: str,
    resource_id: str,
    *,
    before: Cursor | None,
    limit: int,
) -> list[asyncpg.Record]:
    """One page of a service owner's correspondences of one resource, newest first, with each
    recipient's current status and the notification orders' statuses."""
    args: list[Any] = [org, resource_id]
    where = "c.service_owner_id = $1 AND c.resource_id = $2"
    if before is not None:
        args += [before.at, before.id]
        where += " AND (c.requested_publish_time, c.id) < ($3, $4)"
    args.append(limit)
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT c.id, c.recipient, c.senders_reference, c.requested_publish_time, c.published,
                  c.due_date_time, c.status, c.status_changed, c.read_at, c.confirmed_at,
                  c.is_confirmation_needed, p.name AS recipient_name,
                  ARRAY(SELECT o.status FROM notification_orders o WHERE o.correspondence_id = c.id
                        ORDER BY o.is_reminder, o.created, o.id) AS order_statuses
           FROM (SELECT * FROM correspondences c WHERE {where}
                 ORDER BY c.requested_publish_time DESC, c.id DESC LIMIT ${len(args)}) c
           LEFT JOIN parties p ON p.party = c.recipient
           ORDER BY c.requested_publish_time DESC, c.id DESC""",
        *args,
    )
    return rows
