"""The condition endpoints (api.md §4.2): should the main notification, or the reminder, of a
correspondence be sent now? The same rule as our worker's (condition.py)."""

from __future__ import annotations

import uuid

import asyncpg

from correspondence.notification import repository as repo
from correspondence.notification.condition import send_condition_met


async def check_notification(*, pool: asyncpg.Pool, correspondence_id: uuid.UUID, reminder: bool) -> bool:
    """Never an error: an unknown correspondence is simply not notified about."""
    state = await repo.send_state(pool, correspondence_id)
    return send_condition_met(state, reminder=reminder)
