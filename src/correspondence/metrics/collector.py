"""The database-backed metric families, read at most once per TTL per process.

Values come from PostgreSQL, so every API and worker process reports the same truth and nothing is
lost on restart. A scrape storm costs one set of queries: within the TTL the last snapshot is
served, and concurrent scrapes of a stale one wait for the same single refresh."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator

import asyncpg
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from correspondence.kit import clock
from correspondence.kit.request_metrics import RequestMetrics
from correspondence.metrics import repository as repo
from correspondence.notification.statuses import SUCCEEDED


async def read_families(pool: asyncpg.Pool) -> list[Metric]:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        jobs = await repo.job_counts(conn)
        orders = await repo.open_order_counts(conn)
        waiting = await repo.waiting_notification_counts(conn)
        backlog = await repo.event_backlog(conn)
        totals = await repo.totals(conn)
        scans = await repo.scan_backlog(conn, clock.now())
    return [*families(jobs, orders, waiting, backlog, totals), scan_family(scans)]


def scan_family(scans: asyncpg.Record) -> Metric:
    family = GaugeMetricFamily(
        "correspondence_attachment_scans",
        "Files awaiting their malware scan: scanning, retrying (after a failed try), queued.",
        labels=["state"],
    )
    family.add_metric(["scanning"], scans["scanning"])
    family.add_metric(["retrying"], scans["retrying"])
    family.add_metric(["queued"], scans["awaiting"] - scans["scanning"] - scans["retrying"])
    return family


def families(
    jobs: Iterable[asyncpg.Record],
    orders: Iterable[asyncpg.Record],
    waiting: Iterable[asyncpg.Record],
    backlog: asyncpg.Record,
    totals: Iterable[asyncpg.Record],
) -> list[Metric]:
    total: dict[str, list[tuple[str, str, int]]] = {}
    for r in totals:
        total.setdefault(r["metric"], []).append((r["a"], r["b"], r["value"]))

    job_family = GaugeMetricFamily(
        "correspondence_jobs", "Background jobs not yet done, by task and state.", labels=["task", "state"]
    )
    for r in jobs:
        job_family.add_metric([r["task"], repo.JOB_STATES[r["status"]]], r["n"])

    order_family = GaugeMetricFamily(
        "correspondence_notification_orders", "Notification orders by processing status.", labels=["status"]
    )
    for r in orders:
        order_family.add_metric([r["status"]], r["n"])
    for status, _, n in total.get("notification_orders", []):
        order_family.add_metric([status], n)

    per_address = [(r["channel"], r["status"], r["n"]) for r in waiting]
    finished = total.get("notifications", [])
    notifications = GaugeMetricFamily(
        "correspondence_notifications",
        "Notifications per recipient address by channel and send status (Email_Succeeded, SMS_Failed, ...).",
        labels=["channel", "status"],
    )
    for channel, status, n in per_address + finished:
        notifications.add_metric([channel, status], n)
    sent = sum(n for _, status, n in finished if status in SUCCEEDED)
    failed = sum(n for _, status, n in finished if "_Failed" in status)

    deliveries = {state: 0 for state in repo.DELIVERY_STATES.values()}
    deliveries["pending"] = backlog["deliveries_pending"]
    for status, _, n in total.get("event_deliveries", []):
        deliveries[repo.DELIVERY_STATES[int(status)]] = n
    delivery_family = GaugeMetricFamily(
        "correspondence_event_deliveries", "Webhook deliveries by state.", labels=["state"]
    )
    for state, n in deliveries.items():
        delivery_family.add_metric([state], n)

    def one(name: str, help_text: str, value: float) -> Metric:
        return GaugeMetricFamily(name, help_text, value=value)

    def single(metric: str) -> int:
        return sum(n for _, _, n in total.get(metric, []))

    return [
        job_family,
        order_family,
        notifications,
        one(
            "correspondence_notifications_sent", "Notifications accepted by the SMTP server or gateway.", sent
        ),
        one(
            "correspondence_notifications_failed",
            "Notifications that finally failed (a transient error waiting for its retry is queued).",
            failed,
        ),
        one(
            "correspondence_notifications_queued",
            "Notifications waiting to be sent, being sent, or waiting for a retry.",
            sum(n for _, _, n in per_address),
        ),
        one(
            "correspondence_events_outbox_pending",
            "Outbox rows not yet expanded into events.",
            backlog["outbox_pending"],
        ),
        one("correspondence_events", "CloudEvents recorded.", single("events")),
        one("correspondence_event_subscriptions", "Active webhook subscriptions.", backlog["subscriptions"]),
        delivery_family,
        one(
            "correspondence_event_delivery_attempts",
            "POST attempts made for webhook deliveries.",
            single("event_delivery_attempts"),
        ),
    ]


class DatabaseCollector(Collector):
    """Registered in the app's own CollectorRegistry; yields the last snapshot refresh() read."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._families: list[Metric] = []
        self._read_at = float("-inf")
        self._refreshing: asyncio.Future[None] | None = None

    async def refresh(self, read: Callable[[], Awaitable[list[Metric]]]) -> None:
        """Read again when the snapshot is older than the TTL; one read at a time per process."""
        if time.monotonic() - self._read_at < self._ttl:
            return
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._read(read))
        # Shielded: a scraper that gives up must not cancel the read the others are waiting for.
        await asyncio.shield(self._refreshing)

    async def _read(self, read: Callable[[], Awaitable[list[Metric]]]) -> None:
        try:
            self._families = await read()
            self._read_at = time.monotonic()
        finally:
            self._refreshing = None

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not query; the names are not checked against other collectors

    def collect(self) -> Iterator[Metric]:
        yield from self._families


class Exposition:
    """The app's own registry (never the global one, so apps in one process do not mix): the
    request metrics of this process and the database families."""

    def __init__(self, *, cache_seconds: float) -> None:
        self.registry = CollectorRegistry()
        self.requests = RequestMetrics(self.registry)
        self.database = DatabaseCollector(cache_seconds)
        self.registry.register(self.database)
