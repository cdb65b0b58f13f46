"""A short-lived in-process cache of resources (positive hits only, so new ones show at once)."""

from __future__ import annotations

import time

import asyncpg

from correspondence.registry.repository import Resource, get_resource


class ResourceCache:
    def __init__(self, ttl_seconds: float = 30.0) -> None:
        self._ttl = ttl_seconds
        self._items: dict[str, tuple[float, Resource]] = {}

    async def get(self, pool: asyncpg.Pool, resource_id: str) -> Resource | None:
        hit = self._items.get(resource_id)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        resource = await get_resource(pool, resource_id)
        if resource is not None:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[resource_id] = (now + self._ttl, resource)
        return resource
