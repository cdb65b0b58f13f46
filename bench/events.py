"""Event delivery throughput: outbox → CloudEvents → signed webhook POSTs to a local subscriber.

    make bench-events                      # embedded PostgreSQL; appends its section to RESULTS.md
    .venv/bin/python bench/events.py --events 20000 --database-url postgresql://postgres@127.0.0.1/postgres

Three phases, each with N fresh events for one subscription whose endpoint is bench/webhook_sink.py
(a separate process on 127.0.0.1, keep-alive HTTP/1.1, checks every 100th signature):
1. dispatch only — outbox rows expanded into events and deliveries (events/s);
2. delivery only — the delivery loop POSTs them (deliveries/s);
3. end to end — the worker's own loop (both pollers, as `correspondence worker` runs them) from
   committed outbox rows to 200s at the subscriber (events/s).
The sink counts unique event ids, so a lost or repeated delivery shows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from common import OUT, EmbeddedPostgres, cpu_delta, cpu_snapshot, db_url, log, machine, replace_section

from correspondence.adapters.webhooks import HttpWebhookSender
from correspondence.events import signing
from correspondence.events.use_cases.deliver import DeliveryPolicy, deliver_due
from correspondence.events.use_cases.dispatch import dispatch_outbox
from correspondence.kit.db import create_database_sql
from correspondence.kit.jobs import Worker
from correspondence.kit.migrate import upgrade

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "RESULTS.md"
BEGIN = "<!-- bench/events.py: begin -->"
END = "<!-- bench/events.py: end -->"
TARGET = 1000.0
OWNER = "910000009"
RESOURCE = "bench-events"


@dataclass
class Phase:
    name: str
    count: int
    seconds: float
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds


async def fill(pool: asyncpg.Pool, n: int, secret: str, endpoint: str) -> None:
    """n published correspondences and their outbox rows (1,000 ids per row, like bulk Initializes)."""
    async with pool.acquire() as conn, conn.transaction():
        ids = [uuid.uuid4() for _ in range(n)]
        await conn.execute(
            """INSERT INTO correspondences (id, content_id, resource_id, recipient, sender, service_owner_id,
                 senders_reference, requested_publish_time, is_confirmation_needed, is_confidential,
                 allow_forwarding, created, status, status_changed, published)
               SELECT u.id, u.id, $2, 'urn:altinn:person:identifier-no:' || lpad((g % 100000)::text, 11, '0'),
                      'urn:altinn:organization:identifier-no:' || $3, $3, 'bench', now(), false, false, false,
                      now(), 2, now(), now()
               FROM unnest($1::uuid[]) WITH ORDINALITY u(id, g)""",
            ids,
            RESOURCE,
            OWNER,
        )
        for start in range(0, n, 1000):
            await conn.execute(
                "INSERT INTO event_outbox (type, ids, created) VALUES ('correspondencepublished', $1, now())",
                ids[start : start + 1000],
            )
        if not await conn.fetchval("SELECT count(*) FROM event_subscriptions"):
            await conn.execute(
                """INSERT INTO event_subscriptions (consumer, role, end_point, secret, created_by, created)
                   VALUES ($1, 1, $2, $3, $1, now())""",
                "urn:altinn:organization:identifier-no:" + OWNER,
                endpoint,
                secret,
            )


def sink_count(port: int) -> dict[str, int]:
    value: dict[str, int] = httpx.get(f"http://127.0.0.1:{port}/count", timeout=10).json()
    return value


async def run(url: str, n: int, sink_port: int, secret: str, pg_pid: int | None) -> list[Phase]:
    pool = await asyncpg.create_pool(url, min_size=4, max_size=8)
    assert pool is not None
    sender = HttpWebhookSender(timeout_seconds=10, max_connections=64)
    policy = DeliveryPolicy(batch_size=500, concurrency=64)
    endpoint = f"http://127.0.0.1:{sink_port}/hook"
    base = "http://127.0.0.1:8000"
    phases: list[Phase] = []
    me = os.getpid()

    def snapshot() -> dict[str, dict[int, float]]:
        out = {"bench (worker)": cpu_snapshot(me), "subscriber": cpu_snapshot(sink_pid)}
        if pg_pid:
            out["postgres"] = cpu_snapshot(pg_pid)
        return out

    def delta(before: dict[str, dict[int, float]]) -> dict[str, float]:
        after = snapshot()
        return {k: cpu_delta(before[k], after[k]) for k in before}

    sink_pid = next(p.pid for p in psutil.Process(me).children() if "webhook_sink" in " ".join(p.cmdline()))
    try:
        await fill(pool, n, secret, endpoint)
        log(f"phase 1: dispatching {n:,} events")
        before, t0 = snapshot(), time.perf_counter()
        made = 0
        while (step := await dispatch_outbox(pool, base_url=base, batch_size=500)) > 0:
            made += step
        phases.append(
            Phase("dispatch (outbox → events + deliveries)", made, time.perf_counter() - t0, delta(before))
        )

        log(f"phase 2: delivering {made:,} events")
        start_count = sink_count(sink_port)["count"]
        before, t0 = snapshot(), time.perf_counter()
        sent = 0
        while (step := await deliver_due(pool, sender, policy)) > 0:
            sent += step
        phases.append(
            Phase("delivery (signed POSTs, 200s recorded)", sent, time.perf_counter() - t0, delta(before))
        )
        got = sink_count(sink_port)
        assert got["count"] - start_count == n, got

        log(f"phase 3: end to end through the worker loop, {n:,} events")
        await fill(pool, n, secret, endpoint)
        worker = Worker(pool, poll_seconds=0.05)
        worker.add_poller("events.dispatch", lambda: dispatch_outbox(pool, base_url=base, batch_size=500))
        worker.add_poller("events.deliver", lambda: deliver_due(pool, sender, policy))
        before, t0 = snapshot(), time.perf_counter()
        while await worker.run_once():
            pass
        phases.append(Phase("end to end (worker loop)", n, time.perf_counter() - t0, delta(before)))
        got = sink_count(sink_port)
        assert got["count"] == 2 * n and got["unique"] == 2 * n and got["badSignatures"] == 0, got
        pending = await pool.fetchval("SELECT count(*) FROM event_deliveries WHERE status <> 1")
        assert pending == 0, pending
    finally:
        await sender.close()
        await pool.close()
    return phases


def report(phases: list[Phase], n: int, argv: list[str], info: dict[str, str], when: datetime) -> str:
    delivery = phases[1].rate
    e2e = phases[2].rate
    ok = "✅ met" if min(delivery, e2e) >= TARGET else "❌ not met"
    lines = [
        BEGIN,
        "## Event delivery (bench/events.py)",
        "",
        f"Command: `{' '.join(['.venv/bin/python bench/events.py', *argv])}` — {when:%Y-%m-%d %H:%M} UTC, "
        f"{info['source']}; {info['nproc']} vCPU ({info['cpu']}), Python {info['python']}.",
        "",
        f"{n:,} events per phase, one subscription, subscriber = bench/webhook_sink.py (separate process, "
        "keep-alive HTTP/1.1 on 127.0.0.1). Delivery: batches of 500, 64 POSTs in flight (aiohttp), "
        "Standard-Webhooks HMAC-SHA256 signature per POST, results written back in one UPDATE per batch.",
        "",
        "| phase | items | seconds | items/s | CPU (s): worker / subscriber / PostgreSQL |",
        "|---|---:|---:|---:|---|",
    ]
    for p in phases:
        cpu = " / ".join(f"{p.cpu.get(k, 0):.1f}" for k in ("bench (worker)", "subscriber", "postgres"))
        lines.append(f"| {p.name} | {p.count:,} | {p.seconds:.2f} | {p.rate:,.0f} | {cpu} |")
    lines += [
        "",
        f"Target ≥ {TARGET:,.0f} event deliveries/s: delivery {delivery:,.0f}/s, "
        f"end to end {e2e:,.0f}/s — {ok}. "
        "Every event arrived exactly once (the subscriber counted unique `webhook-id`s) and every checked "
        "signature verified.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(section: str) -> None:
    replace_section(RESULTS, BEGIN, END, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--database-url", help="a PostgreSQL server (database postgres); default: embedded")
    parser.add_argument("--no-report", action="store_true", help="leave bench/RESULTS.md alone")
    opts = parser.parse_args()
    info, when = machine(), datetime.now(UTC)
    embedded: EmbeddedPostgres | None = None
    if opts.database_url:
        server = opts.database_url
    else:
        embedded = EmbeddedPostgres(OUT / "events" / "pgdata")
        (OUT / "events").mkdir(parents=True, exist_ok=True)
        server = embedded.start()
        embedded.hold()
    name = f"bench_events_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(create_database_sql(name)))
    url = db_url(server, name) if "?" in server else server.rsplit("/", 1)[0] + "/" + name
    secret = signing.new_secret()
    port = 18000 + os.getpid() % 1000
    sink = subprocess.Popen(
        [sys.executable, str(BENCH / "webhook_sink.py"), str(port), secret], stdout=subprocess.PIPE
    )
    try:
        assert sink.stdout is not None
        sink.stdout.readline()
        upgrade(url)
        pg_pid = embedded.postmaster_pid() if embedded else None
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        phases = asyncio.run(run(url, opts.events, port, secret, pg_pid))
    finally:
        sink.terminate()
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if embedded:
            embedded.stop()
    for p in phases:
        log(f"{p.name}: {p.count:,} in {p.seconds:.2f} s = {p.rate:,.0f}/s")
    section = report(phases, opts.events, sys.argv[1:], info, when)
    print(section)
    if not opts.no_report:
        write_section(section)
        log(f"wrote its section of {RESULTS}")


if __name__ == "__main__":
    main()
