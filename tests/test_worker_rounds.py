"""How much a worker takes a round, and how it cuts a round into transactions."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import orjson

from correspondence.kit import clock
from correspondence.kit.jobs import PUBLISH_ROUND_FACTOR, Job, Worker, chunks


def job(n: int, refs: int) -> Job:
    return Job(n, "t", None, {"ids": [str(uuid.uuid4()) for _ in range(refs)]}, 1)


def test_a_round_is_cut_into_transactions_of_at_most_so_many_refs() -> None:
    batch = [job(1, 3), job(2, 3), job(3, 1), job(4, 9), job(5, 2), job(6, 2)]
    parts = chunks(batch, 7)
    assert [[j.id for j in part] for part in parts] == [[1, 2, 3], [4], [5, 6]]  # 9 > 7 goes alone
    assert [j.id for part in parts for j in part] == [1, 2, 3, 4, 5, 6]  # nothing lost or reordered
    assert chunks([], 7) == []


async def test_the_publish_lane_takes_more_a_round_than_the_other(
    db: asyncpg.Connection, database_url: str
) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    worker = Worker(pool, batch_size=2)
    long_ago = clock.now() - timedelta(days=3650)  # due before anything else in the shared database
    ids = [
        await db.fetchval(
            "INSERT INTO jobs (task, payload, run_at, created) VALUES ($1, $2::jsonb, $3, $3) RETURNING id",
            task,
            orjson.dumps({"ids": []}).decode(),
            long_ago,
        )
        for task in ["correspondence.publish"] * (3 * PUBLISH_ROUND_FACTOR) + ["test.round.other"] * 5
    ]
    try:
        claimed = [j for j in await worker.claim() if j.id in ids]
        publish = [j for j in claimed if j.task == "correspondence.publish"]
        other = [j for j in claimed if j.task == "test.round.other"]
        assert len(publish) == 2 * PUBLISH_ROUND_FACTOR
        assert len(other) == 2
    finally:
        await db.execute("DELETE FROM jobs WHERE id = ANY($1::bigint[])", ids)
        await pool.close()
