"""Every SQL statement of the limits slice: notifications ordered per owner and day (migration
0019), the count that makes the daily cap survive restarts and hold across processes."""

from __future__ import annotations

from datetime import date

import asyncpg


async def reserve(
    conn: asyncpg.Connection | asyncpg.Pool, owner: str, day: date, count: int, cap: int
) -> bool:
    """Add `count` to the owner's day if the total stays within `cap`; atomic, so concurrent
    requests (in any process) can never together pass the cap.

    Committed without waiting for the WAL flush (`synchronous_commit` off for this statement's own
    transaction): the Initialize that follows commits synchronously, and flushing its WAL flushes
    this earlier record too, so a count is durable whenever what it counted is. Waiting here
    would cost a second disk flush per Initialize (bench/limits.py)."""
    row = await conn.fetchrow(
        """INSERT INTO owner_notification_usage AS u (owner_org, day, ordered)
           SELECT $1::text, $2::date, $3::bigint
           FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
           WHERE $3::bigint <= $4::bigint
           ON CONFLICT (owner_org, day) DO UPDATE SET ordered = u.ordered + EXCLUDED.ordered
           WHERE u.ordered + EXCLUDED.ordered <= $4::bigint
           RETURNING ordered""",
        owner,
        day,
        count,
        cap,
    )
    return row is not None


async def release(conn: asyncpg.Connection | asyncpg.Pool, owner: str, day: date, count: int) -> None:
    """Give back what a request reserved and then did not write."""
    await conn.execute(
        """UPDATE owner_notification_usage SET ordered = greatest(ordered - $3, 0)
           WHERE owner_org = $1 AND day = $2""",
        owner,
        day,
        count,
    )


async def ordered(conn: asyncpg.Connection | asyncpg.Pool, owner: str, day: date) -> int:
    value = await conn.fetchval(
        "SELECT ordered FROM owner_notification_usage WHERE owner_org = $1 AND day = $2", owner, day
    )
    return int(value or 0)


async def ordered_on(conn: asyncpg.Connection | asyncpg.Pool, day: date) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT owner_org, ordered FROM owner_notification_usage WHERE day = $1 ORDER BY owner_org", day
    )
    return rows


async def reset(conn: asyncpg.Connection | asyncpg.Pool, owner: str, day: date) -> bool:
    result: str = await conn.execute(
        "DELETE FROM owner_notification_usage WHERE owner_org = $1 AND day = $2", owner, day
    )
    return result.endswith(" 1")


async def forget_before(conn: asyncpg.Connection | asyncpg.Pool, day: date) -> None:
    await conn.execute("DELETE FROM owner_notification_usage WHERE day < $1", day)
