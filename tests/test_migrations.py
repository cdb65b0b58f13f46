"""Migrations that move rows keep every row: run against a database of their own, from the
revision before to the one after, and back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from alembic import command

from correspondence.correspondence.repository import get_status_history
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


def test_0023_history_shows_the_rows_initialize_no_longer_stores_and_downgrade_stores_them(
    server_url: str,
) -> None:
    name = f"corr_migration_{uuid.uuid4().hex[:10]}"
    asyncio.run(_execute(server_url, f'CREATE DATABASE "{name}"'))
    url = with_database(server_url, name)
    try:
        upgrade(url)
        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        sender = "urn:altinn:organization:identifier-no:991825827"
        # initial_status: created ReadyForPublish, Reserved, waiting for attachments, and a row from
        # before 0023 whose history is stored.
        initial = {uuid.uuid4(): 1, uuid.uuid4(): 10, uuid.uuid4(): 0, uuid.uuid4(): None}
        old = next(cid for cid, s in initial.items() if s is None)

        async def seed() -> None:
            conn = await asyncpg.connect(url)
            try:
                content = uuid.uuid4()
                await conn.execute(
                    """INSERT INTO correspondence_contents (id, language, message_title, message_summary,
                         message_body, reply_options, property_list, external_references, created)
                       VALUES ($1, 'nb', 't', 's', 'b', '[]', '{}', '[]', $2)""",
                    content,
                    at,
                )
                for cid, status in initial.items():
                    await conn.execute(
                        """INSERT INTO correspondences (id, content_id, resource_id, recipient, sender,
                             service_owner_id, senders_reference, requested_publish_time,
                             is_confirmation_needed, is_confidential, allow_forwarding, created, status,
                             status_changed, initial_status)
                           VALUES ($1, $2, 'r', 'urn:altinn:person:identifier-no:1', $3, '991825827', 'x',
                                   $4, false, false, false, $4, COALESCE($5, 1), $4, $5)""",
                        cid,
                        content,
                        sender,
                        at,
                        status,
                    )
                stored = [(old, 0, "Initialized", at), (old, 1, "ReadyForPublish", at)]
                # A later row of the same instant still comes after the implied ones.
                stored += [(cid, 2, "Published", at) for cid in initial]
                await conn.executemany(
                    """INSERT INTO correspondence_statuses
                         (correspondence_id, status, status_text, status_changed) VALUES ($1, $2, $3, $4)""",
                    stored,
                )
            finally:
                await conn.close()

        async def histories() -> dict[uuid.UUID, list[tuple[int, str, datetime]]]:
            conn = await asyncpg.connect(url)
            try:
                return {
                    cid: [
                        (r.status, r.status_text, r.status_changed)
                        for r in await get_status_history(conn, cid)
                    ]
                    for cid in initial
                }
            finally:
                await conn.close()

        asyncio.run(seed())
        expected = {
            cid: [(0, "Initialized", at)]
            + ([] if status == 0 else [(10, "Reserved", at) if status == 10 else (1, "ReadyForPublish", at)])
            + [(2, "Published", at)]
            for cid, status in initial.items()
        }
        assert asyncio.run(histories()) == expected

        command.downgrade(alembic_config(url), "0022")
        rows = asyncio.run(
            _fetch(
                url,
                "SELECT correspondence_id, status, party FROM correspondence_statuses"
                " WHERE status <> 2 ORDER BY id",
            )
        )
        implied = [(cid, s, None) for cid, s in ((old, 0), (old, 1))]
        for cid, status in sorted(initial.items()):  # as stored: by id, then history order
            if status is not None:
                implied += [(cid, 0, sender)] + ([] if status == 0 else [(cid, status, sender)])
        assert rows == implied

        # The column is back, empty: every history is stored now and holds the same rows. (Stored
        # again they follow rows of their very instant; Initialize writes none such.)
        upgrade(url)
        assert asyncio.run(_fetch(url, "SELECT count(initial_status) FROM correspondences")) == [(0,)]
        assert {cid: sorted(h) for cid, h in asyncio.run(histories()).items()} == {
            cid: sorted(h) for cid, h in expected.items()
        }
    finally:
        asyncio.run(_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
