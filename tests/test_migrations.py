"""Migrations that move rows keep every row: run against a database of their own, from the
revision before to the one after, and back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from alembic import command

from correspondence.kit.db import with_database
from correspondence.kit.migrate import alembic_config, upgrade


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fetch(url: str, sql: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def test_0022_moves_fetched_rows_to_their_own_table_and_back(server_url: str) -> None:
    name = f"corr_migration_{uuid.uuid4().hex[:10]}"
    asyncio.run(_execute(server_url, f'CREATE DATABASE "{name}"'))
    url = with_database(server_url, name)
    try:
        upgrade(url, "0021")
        cid = uuid.uuid4()
        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        rows = [  # status, text, changed, party
            (0, "Initialized", at, None),
            (2, "Published", at + timedelta(minutes=1), None),
            (3, "Fetched", at + timedelta(minutes=2), "urn:altinn:person:identifier-no:1"),
            (4, "Read", at + timedelta(minutes=2), "urn:altinn:person:identifier-no:1"),
            (3, "Fetched", at + timedelta(minutes=3), None),
        ]

        async def seed() -> None:
            conn = await asyncpg.connect(url)
            try:
                await conn.executemany(
                    """INSERT INTO correspondence_statuses
                         (correspondence_id, status, status_text, status_changed, party)
                       VALUES ($1, $2, $3, $4, $5)""",
                    [(cid, *row) for row in rows],
                )
            finally:
                await conn.close()

        asyncio.run(seed())
        history = "SELECT status, status_changed, party, id FROM correspondence_statuses ORDER BY id"
        before = asyncio.run(_fetch(url, history))

        upgrade(url)
        assert [r[:3] for r in asyncio.run(_fetch(url, history))] == [
            (0, rows[0][2], None),
            (2, rows[1][2], None),
            (4, rows[3][2], rows[3][3]),
        ]
        moved = asyncio.run(
            _fetch(url, "SELECT 3, fetched, party, id FROM correspondence_fetches ORDER BY id")
        )
        assert moved == [r for r in before if r[0] == 3]  # same times, parties and ids
        # New Fetched rows draw their ids from the history's sequence: after every status row so far.
        insert = f"INSERT INTO correspondence_fetches (correspondence_id, fetched) VALUES ('{cid}', now())"
        asyncio.run(_execute(url, insert))
        [(newest,)] = asyncio.run(_fetch(url, "SELECT max(id) FROM correspondence_fetches"))
        assert isinstance(newest, int) and newest > max(int(str(r[3])) for r in before)

        command.downgrade(alembic_config(url), "0021")
        restored = asyncio.run(_fetch(url, history))
        assert restored[: len(before)] == before and [r[0] for r in restored[len(before) :]] == [3]
    finally:
        asyncio.run(_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
