"""Which resource a route names, and whether the caller owns it."""

from __future__ import annotations

import asyncpg

from correspondence.auth.caller import Caller
from correspondence.correspondence import errors as correspondence_errors
from correspondence.kit.text import is_valid_resource_id, strip_resource_prefix
from correspondence.recall import errors
from correspondence.registry.cache import ResourceCache
from correspondence.registry.repository import Resource


def resource_key(raw: str) -> str | None:
    """The registry key a path names (with or without urn:altinn:resource:), or None when it can
    name no resource (a NUL would not even reach PostgreSQL as text)."""
    if "\x00" in raw or not is_valid_resource_id(raw):
        return None
    return strip_resource_prefix(raw)


async def owned_resource(pool: asyncpg.Pool, resources: ResourceCache, caller: Caller, raw: str) -> Resource:
    """404 when no such resource is registered; 403 unless the caller's organisation owns it (the
    caller already passed the sender scope check, as for Initialize)."""
    key = resource_key(raw)
    resource = await resources.get(pool, key) if key is not None else None
    if resource is None:
        raise errors.RESOURCE_NOT_FOUND()
    if caller.org is None or caller.org != resource.owner_org:
        raise correspondence_errors.NO_ACCESS()
    return resource
