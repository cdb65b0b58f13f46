"""A batch of 100,000 recipients (issue 13): time to all published and to all notified, and whether
the API stays responsive meanwhile (Initialize and search p99 measured by wrk while it runs).

One `correspondence serve` process (API and worker together, the embedded default) on an embedded
PostgreSQL, e-mail through the real SMTP adapter to a local aiosmtpd server process
(`tests/smtp_server.py`). Every recipient organisation has an e-mail address. Steps:

1. baseline: wrk runs Initialize (one recipient per request) and a recipient's search at the same
   time, on the idle service, for one window;
2. the batch is created over HTTP, its recipients put in pages of 10,000, and committed;
3. while it is created and published, wrk runs the same two loads in back-to-back windows;
4. then the run waits until every recipient's e-mail has an outcome.

Times come from the database rows (the batch's `committed`, its correspondences' `created` and
`published`, the e-mails' `sent`); the SMTP server's log is checked for one message per recipient.

    .venv/bin/python bench/batch.py                              # 100,000 recipients; writes RESULTS.md
    .venv/bin/python bench/batch.py --recipients 5000 --no-report    # a quick smoke run

Everything goes under bench/out/batch (gitignored); PostgreSQL is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from correspondence.kit.db import create_database_sql

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    ORG_URN,
    ROOT,
    EmbeddedPostgres,
    child_env,
    db_url,
    log,
    replace_section,
    run_wrk,
    start_server,
    stop_server,
    venv_bin,
)
from notifications import start_smtp, stop

OUT = ROOT / "bench" / "out" / "batch"
RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN = "<!-- batch:begin (written by bench/batch.py) -->"
END = "<!-- batch:end -->"
DATABASE = "bench_batch"
OWNER, RESOURCE = "991825827", "bench-batch"
PORT = 18097
API = "/correspondence/api/v1/correspondence"
PAGE = 10_000
READ = "altinn:correspondence.read"
WRITE = "altinn:correspondence.write altinn:serviceowner"


@dataclass
class Window:
    label: str
    initialize: dict[str, Any]
    search: dict[str, Any]


@dataclass
class Result:
    recipients: int
    pages_seconds: float
    created_seconds: float
    published_seconds: float
    notified_seconds: float
    emails: int
    duplicates: int
    counts: dict[str, int]
    baseline: Window
    during: list[Window] = field(default_factory=list)


async def reset_database(base: str) -> str:
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(create_database_sql(DATABASE))
    finally:
        await conn.close()
    return db_url(base, DATABASE)


async def seed(url: str, orgs: list[str]) -> None:
    """The resource and its owner; every batch recipient with an e-mail address (KRR-like)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO resources (resource_id, owner_org, title) VALUES ($1, $2, 'Benchmark')",
            RESOURCE,
            OWNER,
        )
        await conn.execute("INSERT INTO parties (party, name) VALUES ($1, 'BENCHMARK AS')", ORG_URN + OWNER)
        await conn.copy_records_to_table(
            "contacts",
            records=[(ORG_URN + o, f"post-{o}@bench.example", None, False) for o in orgs],
            columns=["party", "email", "mobile", "reserved"],
        )
    finally:
        await conn.close()


def content(reference: str) -> dict[str, Any]:
    return {
        "resourceId": RESOURCE,
        "sendersReference": reference,
        "content": {
            "language": "nb",
            "messageTitle": "Vedtak",
            "messageSummary": "Sammendrag",
            "messageBody": "Dette er **vedtaket**.",
        },
    }


def wrk_files(dev: Any, others: list[str], readers: list[str]) -> tuple[Path, Path]:
    """Initialize bodies (one recipient each, no notification) and search lines (a batch recipient's
    list of the resource, with its own token)."""
    bodies = OUT / "initialize_bodies.txt"
    bodies.write_text(
        "\n".join(
            json.dumps({"correspondence": content(f"load-{i}"), "recipients": [f"0192:{o}"]})
            for i, o in enumerate(others)
        )
        + "\n"
    )
    searches = OUT / "search.txt"
    path = f"{API}?resourceId={RESOURCE}&role=Recipient&limit=100"
    searches.write_text("\n".join(f"{path} {dev.mint(scope=READ, org=o)}" for o in readers) + "\n")
    return bodies, searches


def measure(
    label: str, bodies: Path, searches: Path, token: str, seconds: int, connections: int, pause_ms: int
) -> Window:
    """wrk on Initialize and on search at the same time, for `seconds`; each connection pauses
    `pause_ms` between its requests (bench/paced.lua), 0 = back to back (saturating)."""
    base = f"http://127.0.0.1:{PORT}"
    results: dict[str, dict[str, Any]] = {}
    paced = ROOT / "bench" / "paced.lua"

    def initialize() -> None:
        results["initialize"] = run_wrk(
            base + API,
            paced,
            {
                "BENCH_SCRIPT": str(ROOT / "bench" / "multi.lua"),
                "BENCH_DELAY_MS": str(pause_ms),
                "BENCH_BODIES": str(bodies),
                "BENCH_TOKEN": token,
            },
            connections,
            seconds,
        )

    thread = threading.Thread(target=initialize)
    thread.start()
    results["search"] = run_wrk(
        base,
        paced,
        {
            "BENCH_SCRIPT": str(ROOT / "bench" / "get.lua"),
            "BENCH_DELAY_MS": str(pause_ms),
            "BENCH_REQUESTS": str(searches),
        },
        connections,
        seconds,
    )
    thread.join()
    window = Window(label, results["initialize"], results["search"])
    log(
        f"{label}: Initialize {rate(window.initialize):,.0f}/s p99 {ms(window.initialize, 'p99_us')} ms, "
        f"search {rate(window.search):,.0f}/s p99 {ms(window.search, 'p99_us')} ms"
    )
    return window


def rate(w: dict[str, Any]) -> float:
    return float(w["requests"]) / (float(w["duration_us"]) / 1e6)


def ms(w: dict[str, Any], key: str) -> str:
    return f"{float(w[key]) / 1000:.1f}"


def batch_state(client: httpx.Client, batch_id: str) -> dict[str, Any]:
    response = client.get(f"/ext/api/v1/batches/{batch_id}")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def timings(url: str, batch_id: str) -> dict[str, float]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            """SELECT extract(epoch FROM max(c.created) - b.committed) AS created,
                      extract(epoch FROM max(c.published) - b.committed) AS published,
                      extract(epoch FROM (SELECT max(d.sent) FROM notification_deliveries d
                                          JOIN batch_recipients r ON r.correspondence_id = d.correspondence_id
                                          WHERE r.batch_id = b.id) - b.committed) AS notified
               FROM batches b JOIN batch_recipients r ON r.batch_id = b.id
               JOIN correspondences c ON c.id = r.correspondence_id
               WHERE b.id = $1 GROUP BY b.id, b.committed""",
            uuid.UUID(batch_id),
        )
        return {k: float(row[k]) for k in ("created", "published", "notified")}
    finally:
        await conn.close()


def run(args: argparse.Namespace, base: str) -> Result:
    from correspondence.auth.tokens import DevIssuer
    from correspondence.config import Settings
    from correspondence.kit.migrate import upgrade

    data_dir = OUT / "data"
    url = asyncio.run(reset_database(base))
    upgrade(url)
    rng = random.Random(13)
    orgs = [str(400_000_000 + i) for i in range(args.recipients)]
    others = [str(600_000_000 + i) for i in range(20_000)]
    asyncio.run(seed(url, orgs))
    dev = DevIssuer(Settings(data_dir=data_dir).dev_issuer, data_dir, 24 * 3600)
    token = dev.mint(scope=WRITE, org=OWNER)
    bodies, searches = wrk_files(dev, others, rng.sample(orgs, 200))

    smtp_log = OUT / "smtp.jsonl"
    smtp_log.unlink(missing_ok=True)
    smtp, smtp_port = start_smtp(smtp_log)
    env = child_env(
        CORRESPONDENCE_DATABASE_URL=url,
        CORRESPONDENCE_DATA_DIR=str(data_dir),
        CORRESPONDENCE_SMTP_HOST="127.0.0.1",
        CORRESPONDENCE_SMTP_PORT=str(smtp_port),
        CORRESPONDENCE_SMTP_TLS="none",
        CORRESPONDENCE_LOG_LEVEL="warning",
        CORRESPONDENCE_ACCESS_LOG="false",
        CORRESPONDENCE_BATCH_CHUNK_SIZE=str(args.chunk),
    )
    server = start_server(
        "serve",
        [venv_bin("correspondence"), "serve", "--port", str(PORT)],
        env,
        f"http://127.0.0.1:{PORT}/health",
        OUT,
    )
    try:
        # Warm up first (each connection prepares its statements, caches fill): not measured.
        measure("warm-up (not reported)", bodies, searches, token, 5, args.connections, args.pause)
        baseline = measure(
            "baseline (idle)", bodies, searches, token, args.window, args.connections, args.pause
        )
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", headers=headers, timeout=120) as client:
            body = {
                "correspondence": {
                    **content("batch"),
                    "notification": {
                        "notificationTemplate": "GenericAltinnMessage",
                        "notificationChannel": "Email",
                    },
                }
            }
            created = client.post("/ext/api/v1/batches", json=body)
            created.raise_for_status()
            batch_id = created.json()["id"]
            started = time.monotonic()
            for page, start in enumerate(range(0, len(orgs), PAGE), start=1):
                recipients = [f"0192:{o}" for o in orgs[start : start + PAGE]]
                response = client.put(
                    f"/ext/api/v1/batches/{batch_id}/recipients/{page}", json={"recipients": recipients}
                )
                if response.status_code != 201:
                    raise SystemExit(f"page {page}: {response.status_code} {response.text[:300]}")
            pages_seconds = time.monotonic() - started
            log(f"{len(orgs):,} recipients in {page} pages: {pages_seconds:.1f} s")
            client.post(f"/ext/api/v1/batches/{batch_id}/commit").raise_for_status()
            log("committed; measuring while it is created and published")
            result = Result(len(orgs), pages_seconds, 0, 0, 0, 0, 0, {}, baseline)
            n = 0
            while batch_state(client, batch_id)["status"] == "Committed":
                n += 1
                result.during.append(
                    measure(f"during {n}", bodies, searches, token, args.window, args.connections, args.pause)
                )
            log("all published or failed; waiting for the e-mails")
            deadline = time.monotonic() + args.timeout
            while True:
                state = batch_state(client, batch_id)
                counts = state["counts"]
                if counts["notified"] + counts["notificationFailed"] >= counts["published"]:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"not notified after {args.timeout} s: {counts}")
                time.sleep(1)
            result.counts = counts
    finally:
        stop_server(server)
        stop(smtp)
    times = asyncio.run(timings(url, batch_id))
    result.created_seconds, result.published_seconds = times["created"], times["published"]
    result.notified_seconds = times["notified"]
    to = [r["to"] for r in map(json.loads, smtp_log.read_text().splitlines()) if r["kind"] == "message"]
    mine = [t for t in to if t.startswith("post-4")]
    result.emails, result.duplicates = len(set(mine)), len(mine) - len(set(mine))
    if result.counts["published"] != len(orgs) or result.emails != len(orgs) or result.duplicates:
        raise SystemExit(f"expected {len(orgs)} published and e-mailed once each: {result}")
    log(f"published {result.published_seconds:.1f} s, notified {result.notified_seconds:.1f} s after commit")
    return result


def section(r: Result, args: argparse.Namespace) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    during_init = [float(w.initialize["p99_us"]) / 1000 for w in r.during]
    during_search = [float(w.search["p99_us"]) / 1000 for w in r.during]
    lines = [
        BEGIN,
        "## Batch: 100,000 recipients, and the API meanwhile (`bench/batch.py`)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} × {os.cpu_count()} vCPU, "
        f"commit `{commit}`. Command: `make bench-batch` (= `.venv/bin/python bench/batch.py --recipients "
        f"{args.recipients} --chunk {args.chunk} --window {args.window} --connections {args.connections} "
        f"--pause {args.pause}`).",
        "",
        "- Setup: one `correspondence serve` process (API and worker together), embedded PostgreSQL, "
        "e-mail through the SMTP adapter to an aiosmtpd process; every recipient has an e-mail address. "
        f"The batch (GenericAltinnMessage, Email) gets {r.recipients:,} recipients in pages of {PAGE:,}, "
        f"then is committed; the worker creates it in chunks of {args.chunk:,} through Initialize.",
        f"- Load: wrk -c{args.connections} on Initialize (one recipient a request) and wrk "
        f"-c{args.connections} on a batch recipient's search (`role=Recipient&limit=100`) at the same "
        f"time, each connection pausing {args.pause} ms between requests (bench/paced.lua; 0 = "
        f"saturating), {args.window} s windows: one on the idle service, then back to back while the "
        "batch is created and published. Times from the database rows, counted from commit.",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| {r.recipients:,} recipients put in {-(-r.recipients // PAGE)} pages | {r.pages_seconds:.1f} |",
        f"| commit → all created | {r.created_seconds:.1f} |",
        f"| commit → all published | {r.published_seconds:.1f} "
        f"({r.recipients / r.published_seconds:,.0f}/s) |",
        f"| commit → all notified (e-mail accepted) | {r.notified_seconds:.1f} "
        f"({r.recipients / r.notified_seconds:,.0f}/s) |",
        "",
        "| window | Initialize req/s | Initialize p50 / p99 ms | search req/s | search p50 / p99 ms |",
        "|---|---|---|---|---|",
    ]
    for w in [r.baseline, *r.during]:
        lines.append(
            f"| {w.label} | {rate(w.initialize):,.0f} | {ms(w.initialize, 'p50_us')} / "
            f"{ms(w.initialize, 'p99_us')} | {rate(w.search):,.0f} | {ms(w.search, 'p50_us')} / "
            f"{ms(w.search, 'p99_us')} |"
        )
    errors = sum(int(w.initialize["non2xx"]) + int(w.search["non2xx"]) for w in [r.baseline, *r.during])
    lines += [
        "",
        f"While the batch was published: Initialize p99 median {statistics.median(during_init):.1f} ms "
        f"(worst window {max(during_init):.1f} ms), search p99 median "
        f"{statistics.median(during_search):.1f} ms "
        f"(worst {max(during_search):.1f} ms); idle: {ms(r.baseline.initialize, 'p99_us')} and "
        f"{ms(r.baseline.search, 'p99_us')} ms. Non-2xx answers in all windows: {errors}. "
        f"{r.emails:,} recipients got one e-mail each ({r.duplicates} duplicates); counts at the end: "
        f"{json.dumps(r.counts)}.",
        END,
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=1000, help="CORRESPONDENCE_BATCH_CHUNK_SIZE")
    parser.add_argument("--window", type=int, default=10, help="seconds per wrk window")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections per load")
    parser.add_argument(
        "--pause", type=int, default=20, help="ms each wrk connection waits between requests (0: saturate)"
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds to wait for the e-mails")
    parser.add_argument("--no-report", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args()
    (OUT / "data").mkdir(parents=True, exist_ok=True)
    pg = EmbeddedPostgres(OUT / "data" / "pgdata")
    try:
        base = pg.start_tuned()
        result = run(args, base)
    finally:
        pg.stop()
    text = section(result, args)
    print(text)
    if not args.no_report:
        replace_section(RESULTS, BEGIN, END, text)
        log(f"wrote {RESULTS.relative_to(ROOT)}")
    shutil.rmtree(OUT / "data" / "outbox", ignore_errors=True)


if __name__ == "__main__":
    main()
