"""Wire models of the limits slice (ours: under /ext/api/v1)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel


class OwnerLimitsExt(BaseModel):
    organization: str
    requestsPerMinute: int | None  # per API process; null: no limit
    requestsAvailableNow: float | None  # in the process that answered; null: no limit
    dailyNotificationCap: int | None  # null: no cap
    notificationsOrderedToday: int
    day: date  # today, in the limits' time zone
    dayEndsAt: datetime  # when the count starts again
