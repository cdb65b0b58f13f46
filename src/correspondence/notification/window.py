"""The daytime window for SMS: nobody wants a text from a public agency at night."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def in_window(at: datetime, start: time, end: time, zone: ZoneInfo) -> bool:
    if start == end:
        return True  # no window configured: any time
    local = at.astimezone(zone).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end  # a window across midnight


def next_sms_time(at: datetime, start: time, end: time, zone: ZoneInfo) -> datetime:
    """`at` itself when it falls inside the window, else the window's next start (UTC)."""
    if in_window(at, start, end, zone):
        return at
    local = at.astimezone(zone)
    candidate = datetime.combine(local.date(), start, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), start, tzinfo=zone)
    return candidate.astimezone(UTC)
