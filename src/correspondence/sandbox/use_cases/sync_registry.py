"""Keep the contact registry in step with the sandbox setting, at every process start: the
sandbox parties' rows are there while the sandbox is on and gone when it is off. Initialize and
the notification jobs read the registry as always, so this adds no work to any request."""

from __future__ import annotations

import logging

import asyncpg

from correspondence.sandbox import repository as repo
from correspondence.sandbox.values import PARTIES

log = logging.getLogger("correspondence")


async def sync_registry(pool: asyncpg.Pool, *, enabled: bool) -> None:
    try:
        if enabled:
            await repo.put_parties(pool, PARTIES)
        else:
            await repo.remove_parties(pool, PARTIES)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # Never a reason not to start; the next start tries again.
        log.warning("sandbox: could not update the contact registry's sandbox rows: %s", exc)
