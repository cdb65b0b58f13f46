"""The connection pool hands connections out in the order requests asked for them.

asyncpg alone lets a request that asks just as a connection comes back take it before requests
that were already waiting, which then queue again at the back: under load some requests starve
(bench-search: p99 118 ms at p50 2.2 ms). kit/db.FairPool serves them in arrival order."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import asyncpg

from correspondence.kit.db import create_pool


async def _overtakes(pool: asyncpg.Pool, *, tasks: int, rounds: int) -> int:
    """How often a connection went to a request that asked after one still waiting."""
    asked = 0
    granted: list[int] = []

    async def client() -> None:
        nonlocal asked
        for _ in range(rounds):
            ticket = asked
            asked += 1
            async with pool.acquire() as conn:
                granted.append(ticket)
                await conn.fetchval("SELECT 1")

    await asyncio.gather(*(client() for _ in range(tasks)))
    return sum(1 for a, b in itertools.pairwise(granted) if b < a)


async def test_connections_go_to_requests_in_arrival_order(database_url: str) -> None:
    pool = await create_pool(database_url, 2)
    try:
        await _overtakes(pool, tasks=4, rounds=2)  # both connections opened
        assert await _overtakes(pool, tasks=50, rounds=20) == 0
        assert await pool.fetchval("SELECT 1") == 1  # every turn was given back
    finally:
        await pool.close()


async def test_a_failed_query_gives_its_turn_back(database_url: str) -> None:
    pool = await create_pool(database_url, 1)
    try:
        for _ in range(3):
            with contextlib.suppress(asyncpg.DivisionByZeroError):
                await pool.fetchval("SELECT 1/0")
        assert await asyncio.wait_for(pool.fetchval("SELECT 2"), 5) == 2
    finally:
        await pool.close()


async def test_the_api_plans_once_and_a_worker_plans_each_batch(database_url: str) -> None:
    """The API's pool reuses one plan per statement; a worker's pool plans every batch for its own
    arrays (a generic plan of `= ANY($1)` over thousands of ids scanned and compared every row with
    every id: kit/db.create_pool)."""
    api = await create_pool(database_url, 1)
    worker = await create_pool(database_url, 1, generic_plans=False)
    try:
        assert await api.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        assert await worker.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    finally:
        await api.close()
        await worker.close()
