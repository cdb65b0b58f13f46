"""How fast can bulk Initialize be on this machine? The database side alone, without HTTP.

Sets up the same embedded PostgreSQL, schema, contact registry and 1 M pre-filled correspondences as
bench/initialize.py, then sends the service's own Initialize statement (`INSERT_INITIALIZE`) straight
from one asyncio process, in alternating windows of three variants:

  built   the statement as the service runs it
  lean    without the status rows and the two notification orders a correspondence gets (since
          migration 0023 Initialize stores no status rows: built and no-orders are then the same)
          (--only no-status / no-orders: without one of the two)
  floor   `lean`, and into a copy of `correspondences` that has only its primary key and the
          recipient's inbox index (no sender list, no resource-filtered list, no content index)

`floor` stores less than the service promises (no history, no orders, no sender search, no purge by
content): it is not a design, it is the bound below which no design of these tables can go. Each
window reports correspondences/s and the CPU it cost, PostgreSQL's and this driver's, per
correspondence. The driver stands in for the API process at a fraction of its CPU (bench/RESULTS.md
has the server's share from bench/initialize.py), so every figure here is above what the service can
reach over HTTP.

    .venv/bin/python bench/bulk_floor.py [--recipients 500] [--connections 8] [--rounds 2]
                                         [--duration 15] [--prefill 1000000]

Writes its section of bench/RESULTS.md unless --no-report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import initialize as ib
from common import box_busy, cpu_delta, cpu_snapshot, log, replace_section

sys.path.insert(0, str(ib.ROOT / "src"))
from correspondence.correspondence import repository as repo
from correspondence.kit.ids import new_id, new_ids
from correspondence.kit.text import ORG_URN

SECTION_BEGIN = "<!-- bulk-floor:begin (bench/bulk_floor.py rewrites this section) -->"
SECTION_END = "<!-- bulk-floor:end -->"
VARIANTS = ("built", "lean", "floor")
PARTS = ("no-status", "no-orders")  # lean's two halves, one at a time (--only)


def _drop_cte(sql: str, name: str) -> str:
    """The statement without its `name AS (...)` part (as it is when there is none)."""
    if f"{name} AS (" not in sql:
        return sql
    start = sql.index(f"{name} AS (")
    depth, k = 0, sql.index("(", start)
    while True:
        depth += {"(": 1, ")": -1}.get(sql[k], 0)
        if depth == 0:
            break
        k += 1
    end = k + 1 + (sql[k + 1] == ",")
    return sql[:start] + sql[end:].lstrip("\n")


def statement(variant: str) -> str:
    built = repo.INSERT_INITIALIZE
    if variant == "built":
        return built
    sql = built
    if variant != "no-orders":
        sql = _drop_cte(sql, "ins_status")
    if variant != "no-status":
        sql = _drop_cte(sql, "ins_orders")
    # Parameters only the dropped parts used keep their types, so the argument list stays the same.
    gone = {
        f"${n}::{t}"
        for n, t in re.findall(r"\$(\d+)::([a-z]+(?:\[\])?)", built)
        if not re.search(rf"\${n}(?!\d)", sql)
    }
    kept = "".join(f"{p} AS _p{i}, " for i, p in enumerate(sorted(gone)))
    sql = sql.replace("SELECT r.reserved, r.main_status", f"SELECT {kept}r.reserved, r.main_status")
    if variant == "floor":
        sql = sql.replace("INSERT INTO correspondences (", "INSERT INTO floor_correspondences (")
    return sql


FLOOR_TABLE = """
DROP TABLE IF EXISTS floor_correspondences;
CREATE TABLE floor_correspondences (LIKE correspondences INCLUDING DEFAULTS);
INSERT INTO floor_correspondences SELECT * FROM correspondences;
ALTER TABLE floor_correspondences ADD PRIMARY KEY (id);
CREATE INDEX floor_recipient_inbox ON floor_correspondences
  (recipient, requested_publish_time DESC, id DESC) INCLUDE (status, resource_id);
"""


def arguments(recipients: list[str], now: datetime) -> list[Any]:
    """What use_cases/initialize.py binds for the load-test body (bench/initialize.py): a notification
    with a reminder on the preferred channel, a due date, no attachments, no idempotency key."""
    n = len(recipients)
    owner_urn = ORG_URN + ib.OWNER_ORG
    return [
        new_id(),
        "nb",
        "Meldingstittel",
        "Ett sammendrag for meldingen",
        "# meldingsteksten. Som kan være plain text eller markdown ",
        '[{"linkURL": "https://www.test.no", "linkText": "test"}]',
        "{}",
        "[]",
        json.dumps({"emailBody": "Test av varsel", "sendReminder": True}),
        new_ids(n),
        recipients,
        ib.RESOURCE_ID,
        owner_urn,
        ib.OWNER_ORG,
        "1",
        None,
        now,
        now + timedelta(days=31),
        False,
        False,
        False,
        False,
        None,
        None,
        new_ids(n),
        new_ids(n),
        0,
        3,
        3,
        now,
        now + timedelta(days=7),
        now,
        n == 1,
        False,
        False,
        [],
        [],
        False,
    ]


@dataclass
class Window:
    variant: str
    round: int
    per_second: float
    pg_us: float
    driver_us: float
    box: float
    written: int
    sent: int


async def count(url: str, table: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def window(url: str, variant: str, people: list[str], opts: argparse.Namespace, pg_pid: int) -> Window:
    sql = statement(variant)
    table = "floor_correspondences" if variant == "floor" else "correspondences"
    conns = [await asyncpg.connect(url) for _ in range(opts.connections)]
    rng = random.Random(len(people))
    try:
        await conns[0].execute("CHECKPOINT")

        async def send(conn: asyncpg.Connection, until: float) -> int:
            sent = 0
            while time.monotonic() < until:
                await conn.fetch(sql, *arguments(rng.sample(people, opts.recipients), datetime.now(UTC)))
                sent += opts.recipients
            return sent

        await asyncio.gather(*(send(c, time.monotonic() + opts.warmup) for c in conns))
        before_rows = await count(url, table)
        pg0, me0, box0 = cpu_snapshot(pg_pid, reaped=True), time.process_time(), box_busy()
        t0 = time.monotonic()
        done = sum(await asyncio.gather(*(send(c, t0 + opts.duration) for c in conns)))
        elapsed = time.monotonic() - t0
        pg = cpu_delta(pg0, cpu_snapshot(pg_pid, reaped=True), reaped=True)
        me = time.process_time() - me0
        box = (box_busy() - box0) / elapsed
    finally:
        for c in conns:
            await c.close()
    written = await count(url, table) - before_rows
    return Window(variant, 0, done / elapsed, pg / done * 1e6, me / done * 1e6, box * 100, written, done)


def source() -> str:
    """The measured code: HEAD, and whether src/ or migrations/ differ from it."""
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ib.ROOT, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "diff", "--quiet", "HEAD", "--", "src", "migrations"], cwd=ib.ROOT
    ).returncode
    return f"commit `{rev.stdout.strip()}`" + (" with uncommitted changes" if dirty else "")


def report(windows: list[Window], opts: argparse.Namespace, when: str) -> list[str]:
    lines = [
        SECTION_BEGIN,
        "## Bulk Initialize: the database's floor",
        "",
        "Written by `bench/bulk_floor.py` (the service's Initialize statement sent straight to PostgreSQL,",
        "no HTTP; *built* as the service runs it, *lean* without the status rows and notification orders,",
        "*floor* also into a copy of `correspondences` with only its primary key and the inbox index).",
        "",
        "```bash",
        f".venv/bin/python bench/bulk_floor.py --recipients {opts.recipients}"
        f" --connections {opts.connections} --rounds {opts.rounds} --duration {opts.duration}"
        f" --prefill {opts.prefill}",
        "```",
        "",
        f"Run {when} on {source()}: {opts.recipients} recipients a request, {opts.connections} connections,"
        f" {opts.prefill:,} pre-filled.",
        "",
        "| Variant | Round | Correspondences/s | PostgreSQL µs / correspondence | Driver µs / correspondence"
        " | Box busy % | Rows written = sent |",
        "|---|---|---|---|---|---|---|",
    ]
    for w in windows:
        check = "✓" if w.written == w.sent else f"✗ sent {w.sent:,}"
        lines.append(
            f"| {w.variant} | {w.round} | {w.per_second:,.0f} | {w.pg_us:.1f} | {w.driver_us:.1f}"
            f" | {w.box:.0f} | {w.written:,} {check} |"
        )
    lines.append("")
    for v in VARIANTS:
        values = [w.per_second for w in windows if w.variant == v]
        if values:
            lines.append(f"- {v}: median {statistics.median(values):,.0f} correspondences/s")
    lines += ["", SECTION_END]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=500)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="windows of each variant, alternating")
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--prefill", type=int, default=1_000_000)
    parser.add_argument("--only", default=",".join(VARIANTS))
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="the database of the previous run, as it is")
    opts = parser.parse_args()
    variants = [v for v in opts.only.split(",") if v]
    if unknown := set(variants) - set(VARIANTS) - set(PARTS):
        raise SystemExit(f"--only: unknown {sorted(unknown)}")

    ib.OUT.mkdir(parents=True, exist_ok=True)
    try:
        people = ib.make_contacts(60_000, random.Random(20261127))  # as bench/initialize.py
        if opts.reuse:
            base_url = ib.start_postgres()
            ib.hold_postgres()
        else:
            base_url = setup(opts, people, "floor" in variants)
        pg_pid = ib.postmaster_pid()
        assert pg_pid is not None
        url = ib.db_url(base_url, "correspondence")
        parties = [ib.PERSON_URN + p.ssn for p in people]
        windows: list[Window] = []
        for r in range(1, opts.rounds + 1):
            for v in variants:
                w = asyncio.run(window(url, v, parties, opts, pg_pid))
                w.round = r
                log(
                    f"round {r} {v}: {w.per_second:,.0f} correspondences/s, PostgreSQL {w.pg_us:.1f} µs and "
                    f"driver {w.driver_us:.1f} µs per correspondence, box {w.box:.0f} %, rows {w.written:,}"
                )
                windows.append(w)
    finally:
        with contextlib.suppress(Exception):
            ib.stop_postgres()
    if not opts.no_report:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        replace_section(ib.RESULTS, SECTION_BEGIN, SECTION_END, "\n".join(report(windows, opts, when)))


def setup(opts: argparse.Namespace, people: list[ib.Person], floor: bool) -> str:
    """A new embedded PostgreSQL as bench/initialize.py sets it up; returns its `postgres` URI."""
    ib.stop_postgres()
    shutil.rmtree(ib.DATA, ignore_errors=True)
    ib.DATA.mkdir(parents=True)
    base_url = ib.start_postgres()
    asyncio.run(ib.tune_postgres(base_url))
    ib.stop_postgres()
    base_url = ib.start_postgres()
    ib.hold_postgres()
    ib.cli("migrate")
    ib.cli("resource", "add", ib.RESOURCE_ID, "--owner", ib.OWNER_ORG)
    asyncio.run(ib.fill_database(base_url, people, opts.prefill, ib.load_baseline()))
    if floor:
        log("copying correspondences into floor_correspondences (primary key + inbox index only)")
        asyncio.run(make_floor(ib.db_url(base_url, "correspondence")))
    return base_url


async def make_floor(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(FLOOR_TABLE)
        await conn.execute("VACUUM ANALYZE floor_correspondences")
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
