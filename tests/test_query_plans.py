"""The worker's batch statements keep a cost that follows the batch, whatever the statistics say:
their plans are checked for shape (no join that stale estimates could make quadratic)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg

from correspondence.kit import clock
from correspondence.notification import repository as notification_repo

JOINS = {"Hash Join", "Nested Loop", "Merge Join"}


class Explainer:
    """Stands in for a connection: explains each statement instead of running it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.plans: list[dict[str, Any]] = []

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        explained = await self._conn.fetchval("EXPLAIN (FORMAT JSON) " + sql, *args)
        self.plans.append(json.loads(explained)[0]["Plan"])
        return []


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


async def test_completing_orders_reads_each_orders_addresses_by_its_id_and_joins_nothing(
    db: asyncpg.Connection,
) -> None:
    explainer = Explainer(db)
    order_ids = [uuid.uuid4() for _ in range(2000)]
    await notification_repo.complete_orders(explainer, order_ids, clock.now())  # type: ignore[arg-type]
    [plan] = explainer.plans
    assert [n["Node Type"] for n in nodes(plan) if n["Node Type"] in JOINS] == []
    deliveries = [n for n in nodes(plan) if n.get("Relation Name") == "notification_deliveries"]
    assert deliveries  # the addresses are read …
    for node in deliveries:  # … each time through the order's own index entries
        assert node["Node Type"] in {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}, node
        below = node.get("Plans", [])  # a bitmap scan's condition is on its index scan
        conditions = node.get("Index Cond", "") + "".join(c.get("Index Cond", "") for c in below)
        assert "order_id = n.id" in conditions, node
