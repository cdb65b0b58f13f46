"""The limits in /metrics: rejections counted in this process (like the request metrics), and
each owner's notifications ordered today with its cap, read from PostgreSQL with the other
database figures (only when some owner has a cap)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from correspondence.kit import clock
from correspondence.limits import repository as repo
from correspondence.limits.rules import day_of
from correspondence.limits.setup import Limits


class RejectionCollector(Collector):
    """Reads the live counts of whatever Limits the app's services hold at scrape time."""

    def __init__(self, limits: Callable[[], Limits | None]) -> None:
        self._limits = limits

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        limits = self._limits()
        if limits is None or not limits.enabled:
            return
        family = CounterMetricFamily(
            "correspondence_limit_rejections",
            "Requests answered 429 by a per-owner limit in this process, by owner and limit.",
            labels=["owner", "limit"],
        )
        if limits.limiter is not None:
            for owner, n in sorted(limits.limiter.rejections.items()):
                family.add_metric([owner, "rate"], n)
        if limits.notification_cap is not None:
            for owner, n in sorted(limits.notification_cap.rejections.items()):
                family.add_metric([owner, "daily_notifications"], n)
        yield family


async def usage_families(conn: asyncpg.Connection | asyncpg.Pool, limits: Limits) -> list[Metric]:
    if limits.notification_cap is None:
        return []
    ordered = GaugeMetricFamily(
        "correspondence_owner_notifications_ordered_today",
        "Notifications each service owner has ordered today (the daily cap's count).",
        labels=["owner"],
    )
    cap = GaugeMetricFamily(
        "correspondence_owner_daily_notification_cap",
        "The daily notification cap of each owner that ordered today (0: no cap).",
        labels=["owner"],
    )
    for row in await repo.ordered_on(conn, day_of(clock.now(), limits.zone)):
        ordered.add_metric([row["owner_org"]], row["ordered"])
        cap.add_metric([row["owner_org"]], limits.cap.for_owner(row["owner_org"]))
    return [ordered, cap]
