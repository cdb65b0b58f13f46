"""The limits as the settings make them, built once per process (Services.limits)."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from correspondence.config import Settings
from correspondence.limits.buckets import RateLimiter
from correspondence.limits.rules import PerOwner
from correspondence.limits.use_cases.notification_cap import NotificationCap


@dataclass(frozen=True)
class Limits:
    rate: PerOwner
    cap: PerOwner
    zone: ZoneInfo
    limiter: RateLimiter | None  # None: no owner has a rate limit (nothing is checked)
    notification_cap: NotificationCap | None  # None: no owner has a daily cap

    @property
    def enabled(self) -> bool:
        return self.limiter is not None or self.notification_cap is not None


def open_limits(settings: Settings) -> Limits:
    rate = PerOwner(settings.rate_limit_per_minute, dict(settings.rate_limit_overrides))
    cap = PerOwner(settings.daily_notification_cap, dict(settings.daily_notification_cap_overrides))
    zone = ZoneInfo(settings.limits_timezone)
    return Limits(
        rate=rate,
        cap=cap,
        zone=zone,
        limiter=RateLimiter(rate) if rate.enabled else None,
        notification_cap=NotificationCap(cap, zone) if cap.enabled else None,
    )
