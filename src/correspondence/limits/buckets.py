"""The request rate per service owner: a token bucket per owner, in this process's memory.

Each owner's bucket holds up to its per-minute limit and refills at limit/60 per second, so an
owner may burst a whole minute's worth and then goes on at the limit's pace. Nothing is shared
between processes: with `serve --workers N` or R replicas an owner may make up to N×R times the
limit (docs/sandbox-and-limits.md). Checking costs a dict lookup and a little arithmetic."""

from __future__ import annotations

import time
from collections.abc import Callable

from correspondence.limits import errors
from correspondence.limits.rules import PerOwner

# Past this many owners, buckets that have refilled completely are dropped (they carry no state
# a fresh bucket would not have); keeps memory bounded whoever presents a sender token.
_MAX_BUCKETS = 10_000


class _Bucket:
    __slots__ = ("capacity", "refill", "stamp", "tokens")

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0  # tokens per second
        self.tokens = self.capacity
        self.stamp = now


class RateLimiter:
    def __init__(self, limits: PerOwner, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._monotonic = monotonic
        self._buckets: dict[str, _Bucket | None] = {}  # None: this owner has no limit
        self.rejections: dict[str, int] = {}

    def check(self, owner: str) -> None:
        """Take one token for `owner`, or raise the 429 (9429) with Retry-After."""
        wait = self.admit(owner)
        if wait is not None:
            raise errors.rate_limited(owner, self.limits.for_owner(owner), wait)

    def admit(self, owner: str) -> float | None:
        """None when admitted; else the seconds until a token will be there."""
        try:
            bucket = self._buckets[owner]
        except KeyError:
            bucket = self._new_bucket(owner)
        if bucket is None:
            return None
        now = self._monotonic()
        tokens = bucket.tokens + (now - bucket.stamp) * bucket.refill
        if tokens > bucket.capacity:
            tokens = bucket.capacity
        bucket.stamp = now
        if tokens >= 1.0:
            bucket.tokens = tokens - 1.0
            return None
        bucket.tokens = tokens
        self.rejections[owner] = self.rejections.get(owner, 0) + 1
        return (1.0 - tokens) / bucket.refill

    def tokens(self, owner: str) -> float | None:
        """Requests `owner` could make at once now in this process (None: no limit)."""
        bucket = self._buckets.get(owner)
        if bucket is None:
            per_minute = self.limits.for_owner(owner)
            return float(per_minute) if per_minute > 0 else None
        elapsed = self._monotonic() - bucket.stamp
        return min(bucket.capacity, bucket.tokens + elapsed * bucket.refill)

    def _new_bucket(self, owner: str) -> _Bucket | None:
        if len(self._buckets) >= _MAX_BUCKETS:
            self._prune()
        per_minute = self.limits.for_owner(owner)
        bucket = _Bucket(per_minute, self._monotonic()) if per_minute > 0 else None
        self._buckets[owner] = bucket
        return bucket

    def _prune(self) -> None:
        now = self._monotonic()
        self._buckets = {
            owner: b
            for owner, b in self._buckets.items()
            if b is not None and b.tokens + (now - b.stamp) * b.refill < b.capacity
        }
