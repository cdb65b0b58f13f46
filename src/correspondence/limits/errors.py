"""Errors of the limits slice. Their codes are ours (94xx): the real service has none above 6003,
so no client can mistake them for one of its codes (api.md §8)."""

from __future__ import annotations

import math

from correspondence.kit.errors import ApiError

RATE_LIMITED = 9429
DAILY_NOTIFICATION_CAP = 9430


def _retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def rate_limited(owner: str, per_minute: int, wait_seconds: float) -> ApiError:
    after = _retry_after(wait_seconds)
    return ApiError(
        RATE_LIMITED,
        429,
        f"Too many requests for organization {owner}: at most {per_minute} per minute. "
        f"Try again in {after} s.",
        {"Retry-After": after},
    )


def daily_cap_reached(owner: str, cap: int, ordered: int, wanted: int, wait_seconds: float) -> ApiError:
    return ApiError(
        DAILY_NOTIFICATION_CAP,
        429,
        f"Daily notification cap reached for organization {owner}: {ordered} of {cap} notifications "
        f"ordered today, and this request orders {wanted}. The count starts again at midnight.",
        {"Retry-After": _retry_after(wait_seconds)},
    )
