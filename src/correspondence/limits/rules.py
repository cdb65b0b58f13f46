"""What the settings say about an owner's limits, and the calendar of the daily cap."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class PerOwner:
    """A default for every service owner and overrides for some; 0 means no limit."""

    default: int
    overrides: Mapping[str, int] = field(default_factory=dict)

    def for_owner(self, owner: str) -> int:
        return self.overrides.get(owner, self.default)

    @property
    def enabled(self) -> bool:
        return self.default > 0 or any(v > 0 for v in self.overrides.values())


def day_of(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()


def next_day_begins(at: datetime, zone: ZoneInfo) -> datetime:
    return datetime.combine(day_of(at, zone) + timedelta(days=1), time(0), tzinfo=zone)


def seconds_until_next_day(at: datetime, zone: ZoneInfo) -> int:
    """Whole seconds (rounded up, at least 1): what Retry-After says for the daily cap."""
    return max(1, math.ceil((next_day_begins(at, zone) - at).total_seconds()))
