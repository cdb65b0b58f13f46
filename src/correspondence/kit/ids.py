"""UUIDv7 identifiers (time-ordered, index friendly)."""

import uuid

import uuid_utils


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)


def new_ids(n: int) -> list[uuid.UUID]:
    return [uuid.UUID(bytes=uuid_utils.uuid7().bytes) for _ in range(n)]
