"""At publish: queue the correspondences' notification orders for their send times."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from correspondence.notification import repository as repo


async def schedule_notifications(
    conn: asyncpg.Connection, correspondence_ids: list[uuid.UUID], now: datetime
) -> None:
    """In the publishing transaction: the main orders go now, the reminders at their time (the
    reminder's send condition is checked then, not now)."""
    await repo.enqueue_orders(conn, correspondence_ids, now)
