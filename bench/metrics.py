"""A /metrics scrape at 10 M+ rows: cold, cached, a scrape storm, against the old full counts;
and what the request metrics add to every request.

    make bench-metrics                     # embedded PostgreSQL; writes its section of RESULTS.md
    .venv/bin/python bench/metrics.py --rows 10000000 --database-url postgresql://postgres@127.0.0.1/postgres

Loads the tables /metrics reads (history: finished notifications, completed orders, events,
delivered webhooks, done jobs, expanded outbox rows; plus a small backlog of each) with
generate_series INSERT … SELECT, VACUUM ANALYZEs them (as autovacuum would), then times:
- the old scrape's queries (commit 5cb9c16: count(*) over whole tables) — once, they are slow;
- the new database read (partial indexes + metric_totals): first and median of 20;
- GET /metrics through the app: first (cold) and cached (TTL 10 s), median and p99 of 200;
- 100 concurrent scrapes of a stale cache (one database read between them);
- RequestContext per-request cost with and without the request metrics (a no-op app behind it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from common import OUT, EmbeddedPostgres, db_url, log, machine, replace_section

from correspondence.app import create_app
from correspondence.config import Settings
from correspondence.kit.db import create_database_sql
from correspondence.kit.middleware import RequestContext
from correspondence.kit.migrate import upgrade
from correspondence.metrics.collector import Exposition, read_families

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "RESULTS.md"
BEGIN = "<!-- bench/metrics.py: begin -->"
END = "<!-- bench/metrics.py: end -->"

# The scrape before migration 0010 (src/correspondence/metrics/repository.py at 5cb9c16).
OLD_QUERIES = [
    "SELECT task, status, count(*) AS n FROM jobs WHERE status IN (0, 1, 3) GROUP BY task, status",
    "SELECT processing_status AS status, count(*) AS n FROM notification_orders GROUP BY 1",
    "SELECT channel, status, count(*) AS n FROM notification_deliveries GROUP BY 1, 2",
    """SELECT (SELECT count(*) FROM event_outbox WHERE dispatched IS NULL) AS outbox_pending,
              (SELECT count(*) FROM events) AS events,
              (SELECT count(*) FROM event_subscriptions WHERE deleted IS NULL) AS subscriptions""",
    """SELECT status, count(*) AS n, coalesce(sum(attempts), 0) AS attempts
       FROM event_deliveries GROUP BY status""",
]


def _uuid(expr: str, tag: int) -> str:
    """A monotonic uuid from an integer (right-edge index inserts, as UUIDv7 ids are)."""
    return f"(lpad(to_hex({tag}), 4, '0') || lpad(to_hex({expr}), 28, '0'))::uuid"


def load_statements(rows: int, backlog: int) -> list[tuple[str, str]]:
    """(label, SQL) filling ≈ rows of history over five tables plus `backlog` waiting rows each."""
    nd, no, ev, ed, jobs = (int(rows * f) for f in (0.3, 0.2, 0.2, 0.2, 0.1))
    finished = (
        "ARRAY['Email_Succeeded', 'Email_Succeeded', 'Email_Succeeded', 'Email_Failed', 'SMS_Accepted']"
    )
    status = f"({finished})[i % 5 + 1]"
    return [
        (
            f"notification_deliveries {nd:,}",
            f"""INSERT INTO notification_deliveries (id, order_id, correspondence_id, channel, address,
                  recipient, body, status, attempts, next_attempt, created, updated)
                SELECT {_uuid("i", 1)}, {_uuid("i", 2)}, {_uuid("i / 2", 3)},
                       CASE WHEN i % 5 = 4 THEN 'SMS' ELSE 'Email' END, 'a' || i, '{{}}', 'b',
                       CASE WHEN i > {nd} THEN (ARRAY['Email_New','Email_Failed_TransientError'])[i % 2 + 1]
                            ELSE {status} END, 1, now(), now(), now()
                FROM generate_series(1, {nd + backlog}) i""",
        ),
        (
            f"notification_orders {no:,}",
            f"""INSERT INTO notification_orders (id, correspondence_id, is_reminder, template, channel,
                  requested_send_time, recipient, status, processing_status, created)
                SELECT {_uuid("i", 4)}, {_uuid("i", 5)}, false, 1, 0, now(), 'r', 0,
                       CASE WHEN i > {no} THEN 'Registered' ELSE 'Order_Completed' END, now()
                FROM generate_series(1, {no + backlog}) i""",
        ),
        (
            f"events {ev:,}",
            f"""INSERT INTO events (id, type, source, resource, resourceinstance, time, owner_org)
                SELECT {_uuid("i", 6)}, 'no.altinn.correspondence.correspondencepublished', 's', 'r', 'i',
                       now(), 'o'
                FROM generate_series(1, {ev}) i""",
        ),
        (
            f"event_deliveries {ed:,}",
            f"""INSERT INTO event_deliveries (event_id, subscription_id, status, attempts, next_attempt,
                  created)
                SELECT {_uuid("i", 6)}, 1, CASE WHEN i > {ed} THEN 0 ELSE 1 END, 1, now(), now()
                FROM generate_series(1, {ed + backlog}) i""",
        ),
        (
            f"jobs {jobs:,}",
            f"""INSERT INTO jobs (task, run_at, status, finished)
                SELECT 'notification.deliver', now(),
                       CASE WHEN i > {jobs} THEN i % 2 ELSE 2 END, now()
                FROM generate_series(1, {jobs + backlog}) i""",
        ),
        (
            f"event_outbox {rows // 20:,}",
            f"""INSERT INTO event_outbox (type, ids, created, dispatched)
                SELECT 'correspondencepublished', ARRAY[{_uuid("i", 7)}], now(),
                       CASE WHEN i > {rows // 20} THEN NULL ELSE now() END
                FROM generate_series(1, {rows // 20 + backlog}) i""",
        ),
    ]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


async def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


async def measure(url: str, rows: int, backlog: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """INSERT INTO event_subscriptions (consumer, role, end_point, secret, created_by, created)
               VALUES ('urn:altinn:organization:identifier-no:910000009', 1, 'https://h.example', 's', 'b',
                       now())"""
        )
        t_load = time.perf_counter()
        for label, sql in load_statements(rows, backlog):
            t0 = time.perf_counter()
            await conn.execute(sql)
            log(f"loaded {label} in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        log(f"VACUUM ANALYZE in {time.perf_counter() - t0:.1f} s")
        out["load_s"] = time.perf_counter() - t_load
        tables = ("notification_deliveries", "notification_orders", "events", "event_deliveries", "jobs")
        counts = " + ".join(f"(SELECT count(*) FROM {t})" for t in (*tables, "event_outbox"))
        out["rows"] = await conn.fetchval(f"SELECT {counts}")
        t0 = time.perf_counter()
        for sql in OLD_QUERIES:
            await conn.fetch(sql)
        out["old_s"] = time.perf_counter() - t0
        log(f"old scrape queries: {ms(out['old_s'])} ms")
    finally:
        await conn.close()

    pool = await asyncpg.create_pool(url, min_size=2, max_size=4)
    try:
        out["new_first_s"] = await timed(lambda: read_families(pool))
        reads = [await timed(lambda: read_families(pool)) for _ in range(20)]
        out["new_median_s"] = statistics.median(reads)
        log(f"new database read: first {ms(out['new_first_s'])} ms, median {ms(out['new_median_s'])} ms")
        families = {f.name: f for f in await read_families(pool)}
        sent = families["correspondence_notifications_sent"].samples[0].value
        out["sent"] = sent
    finally:
        await pool.close()

    settings = Settings(data_dir=OUT / "metrics", access_log=False, metrics_cache_seconds=10)
    app = create_app(settings, url, run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def scrape() -> None:
                response = await client.get("/metrics")
                assert response.status_code == 200

            out["scrape_cold_s"] = await timed(scrape)
            cached = sorted([await timed(scrape) for _ in range(200)])
            out["scrape_cached_median_s"] = statistics.median(cached)
            out["scrape_cached_p99_s"] = cached[int(len(cached) * 0.99) - 1]
            exposition: Exposition = app.state.metrics
            exposition.database._read_at = float("-inf")  # stale: the next scrape must read
            reads = 0
            original = read_families

            async def counting(p: asyncpg.Pool) -> Any:
                nonlocal reads
                reads += 1
                return await original(p)

            import correspondence.metrics.endpoints as endpoints

            endpoints.read_families = counting  # type: ignore[assignment]
            t0 = time.perf_counter()
            await asyncio.gather(*(scrape() for _ in range(100)))
            out["storm_s"] = time.perf_counter() - t0
            out["storm_reads"] = reads
            endpoints.read_families = original
    log(
        f"scrape: cold {ms(out['scrape_cold_s'])} ms, cached median {ms(out['scrape_cached_median_s'])} ms; "
        f"100 concurrent on a stale cache {ms(out['storm_s'])} ms with {out['storm_reads']} read(s)"
    )
    out.update(await middleware_overhead())
    return out


async def middleware_overhead(n: int = 200_000) -> dict[str, float]:
    """RequestContext around a no-op app, with and without the request metrics (µs per request)."""

    class Route:
        path = "/correspondence/api/v1/correspondence"

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["route"] = Route
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: Any) -> None:
        return None

    results: dict[str, float] = {}
    for label, metrics in (("without", None), ("with", Exposition(cache_seconds=10).requests)):
        context = RequestContext(app, log_requests=False, metrics=metrics)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(n):
                scope = {"type": "http", "method": "POST", "path": "/correspondence/api/v1/correspondence",
                         "headers": [(b"accept", b"application/json")]}  # fmt: skip
                await context(scope, receive, send)
            best = min(best, (time.perf_counter() - t0) / n)
        results[f"request_{label}_us"] = best * 1e6
    log(
        f"RequestContext: {results['request_without_us']:.2f} µs without, "
        f"{results['request_with_us']:.2f} µs with request metrics"
    )
    return results


def report(r: dict[str, Any], argv: list[str], info: dict[str, str], when: datetime) -> str:
    extra = r["request_with_us"] - r["request_without_us"]
    lines = [
        BEGIN,
        "## /metrics at scale (bench/metrics.py)",
        "",
        f"Command: `{' '.join(['.venv/bin/python bench/metrics.py', *argv])}` — {when:%Y-%m-%d %H:%M} UTC, "
        f"{info['source']}; {info['nproc']} vCPU ({info['cpu']}), Python {info['python']}.",
        "",
        f"{r['rows']:,} rows in the tables /metrics reads (finished notifications, completed orders, events, "
        "delivered webhooks, done jobs, expanded outbox rows, plus a backlog of each), loaded with "
        f"generate_series and VACUUM ANALYZEd in {r['load_s']:.0f} s.",
        "",
        "| what | ms |",
        "|---|---:|",
        f"| old scrape (5cb9c16: count(*) over whole tables), once | {ms(r['old_s'])} |",
        f"| new database read (partial indexes + metric_totals), first | {ms(r['new_first_s'])} |",
        f"| new database read, median of 20 | {ms(r['new_median_s'])} |",
        f"| GET /metrics, first (cold: reads the database) | {ms(r['scrape_cold_s'])} |",
        f"| GET /metrics, cached (TTL 10 s), median of 200 | {ms(r['scrape_cached_median_s'])} |",
        f"| GET /metrics, cached, p99 of 200 | {ms(r['scrape_cached_p99_s'])} |",
        f"| 100 concurrent GET /metrics on a stale cache ({r['storm_reads']} database read) "
        f"| {ms(r['storm_s'])} |",
        "",
        f"Request metrics (Counter + Histogram in RequestContext, labels cached): "
        f"{r['request_without_us']:.2f} µs per request without, {r['request_with_us']:.2f} µs with "
        f"(+{extra:.2f} µs; Initialize takes ≈ 400 µs of server time).",
        END,
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--backlog", type=int, default=2000, help="waiting rows per table")
    parser.add_argument("--database-url", help="a PostgreSQL server (database postgres); default: embedded")
    parser.add_argument("--no-report", action="store_true", help="leave bench/RESULTS.md alone")
    opts = parser.parse_args()
    info, when = machine(), datetime.now(UTC)
    embedded: EmbeddedPostgres | None = None
    if opts.database_url:
        server = opts.database_url
    else:
        (OUT / "metrics").mkdir(parents=True, exist_ok=True)
        embedded = EmbeddedPostgres(OUT / "metrics" / "pgdata")
        server = embedded.start()
        embedded.hold()
    name = f"bench_metrics_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(create_database_sql(name)))
    url = db_url(server, name) if "?" in server else server.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        result = asyncio.run(measure(url, opts.rows, opts.backlog))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if embedded:
            embedded.stop()
    section = report(result, sys.argv[1:], info, when)
    print(section)
    if not opts.no_report:
        replace_section(RESULTS, BEGIN, END, section)
        log(f"wrote its section of {RESULTS}")


if __name__ == "__main__":
    main()
