"""Notification e-mail throughput: e-mails/s through the real SMTP adapter (aiosmtplib, pooled
connections) into a local aiosmtpd server process, sent by a `correspondence worker` process.

Many correspondences with an e-mail notification are initialized (500 recipients per request,
each recipient organisation with an e-mail address in the contact registry); then the worker is
started and drains everything: it publishes them, processes the notification orders (texts,
addresses, one delivery row per address) and sends the e-mails. The clock is the database's: the
send rate is taken from the delivery rows' `sent` times (first to last), end to end from the first
publish to the last accepted e-mail. The SMTP server's log is checked for exactly one message per
address (no duplicates, none missing).

    .venv/bin/python bench/notifications.py        # 3 runs of 20,000 e-mails; appends to RESULTS.md
    .venv/bin/python bench/notifications.py --emails 2000 --runs 1 --no-report   # a quick smoke run

Everything goes under bench/out/notifications (gitignored); PostgreSQL is stopped at the end.
Target (issue 5): ≥ 500 e-mails/s on the 2-vCPU machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

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
    venv_bin,
)

OUT = ROOT / "bench" / "out" / "notifications"
RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN = "<!-- notifications:begin (written by bench/notifications.py) -->"
END = "<!-- notifications:end -->"
DATABASE = "bench_notifications"
OWNER, RESOURCE = "991825827", "bench-notifications"
TARGET = 500.0
# Written once from a cProfile of the worker (bench/notifications.py's setup, worker in-process).
ANALYSIS = """\
What limits it: CPU, split about evenly between the worker (≈0.25 ms per e-mail: aiosmtplib's
command/response round trips, its address parsing, rendering, asyncpg) and the aiosmtpd server
(≈0.3 ms, also pure Python), with PostgreSQL at ≈0.14 ms; on 2 vCPUs that caps one worker near
2,000/s. The first version built each message with the standard library's `EmailMessage` (modern
policy): that alone cost ≈1.3 ms per e-mail, more than the whole SMTP exchange, and held the run at
≈480 e-mails/s; rendering the few headers and the base64 body by hand (`adapters/email.py`
`render`) tripled the rate. More SMTP connections help a little (8: ≈1,330/s, 32: ≈1,590/s on
10,000 e-mails while the machine was shared); a real relay with network latency needs more of them,
and more workers scale sideways (each address is claimed by exactly one).
"""


@dataclass
class Run:
    emails: int
    send_seconds: float
    end_to_end_seconds: float
    received: int
    duplicates: int
    worker_cpu: float
    smtp_cpu: float
    postgres_cpu: float

    @property
    def send_rate(self) -> float:
        return self.emails / self.send_seconds

    @property
    def end_to_end_rate(self) -> float:
        return self.emails / self.end_to_end_seconds


async def reset_database(base: str) -> str:
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(create_database_sql(DATABASE))
    finally:
        await conn.close()
    return db_url(base, DATABASE)


async def load(url: str, emails: int, per_request: int, data_dir: Path) -> None:
    """Registries by COPY, then Initialize through the service's own app (in-process)."""
    from correspondence.app import create_app
    from correspondence.auth.tokens import DevIssuer
    from correspondence.config import Settings

    orgs = [str(400_000_000 + i) for i in range(emails)]
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
    settings = Settings(data_dir=data_dir, access_log=False, mode="development")
    app = create_app(settings, url, run_worker=False)
    issuer = DevIssuer(settings.dev_issuer, data_dir, 3600)
    token = issuer.mint(scope="altinn:correspondence.write altinn:serviceowner", org=OWNER)
    headers = {"Authorization": f"Bearer {token}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for start in range(0, emails, per_request):
                body = {
                    "correspondence": {
                        "resourceId": RESOURCE,
                        "sendersReference": f"bench-{start}",
                        "content": {
                            "language": "nb",
                            "messageTitle": "Vedtak",
                            "messageSummary": "Sammendrag",
                            "messageBody": "Dette er **vedtaket**.",
                        },
                        "notification": {
                            "notificationTemplate": "GenericAltinnMessage",
                            "notificationChannel": "Email",
                        },
                    },
                    "recipients": [f"0192:{o}" for o in orgs[start : start + per_request]],
                }
                response = await client.post(
                    "/correspondence/api/v1/correspondence", json=body, headers=headers
                )
                if response.status_code != 200:
                    raise SystemExit(f"Initialize failed: {response.status_code} {response.text[:500]}")


def start_smtp(log_file: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "smtp_server.py"), str(log_file)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"SMTP server did not start: {line!r}")
    return proc, int(line.split()[1])


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (PostgreSQL's backends are children)."""
    total = 0.0
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.user + t.system
    return total


async def wait_until_done(url: str, emails: int, timeout: float) -> None:
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = await conn.fetchval(
                "SELECT count(*) FROM notification_deliveries WHERE status NOT IN "
                "('Email_New', 'Email_Sending', 'Email_Failed_TransientError')"
            )
            if done >= emails:
                return
            await asyncio.sleep(0.2)
        raise SystemExit(f"not done after {timeout:.0f} s")
    finally:
        await conn.close()


async def timings(url: str) -> tuple[int, float, float]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            """SELECT count(*) FILTER (WHERE status = 'Email_Succeeded') AS ok,
                      extract(epoch FROM max(sent) - min(created))
                        AS send,
                      extract(epoch FROM max(sent) - (SELECT min(published) FROM correspondences)) AS e2e
               FROM notification_deliveries"""
        )
        return int(row["ok"]), float(row["send"]), float(row["e2e"])
    finally:
        await conn.close()


def one_run(base: str, pg: EmbeddedPostgres, emails: int, per_request: int, connections: int) -> Run:
    data_dir = OUT / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    url = asyncio.run(reset_database(base))
    from correspondence.kit.migrate import upgrade

    upgrade(url)  # Alembic runs its own event loop
    log(f"initializing {emails} correspondences ({per_request} recipients per request)")
    asyncio.run(load(url, emails, per_request, data_dir))
    smtp_log = OUT / "smtp.jsonl"
    smtp_log.unlink(missing_ok=True)
    smtp, port = start_smtp(smtp_log)
    env = child_env(
        CORRESPONDENCE_DATABASE_URL=url,
        CORRESPONDENCE_DATA_DIR=str(data_dir),
        CORRESPONDENCE_SMTP_HOST="127.0.0.1",
        CORRESPONDENCE_SMTP_PORT=str(port),
        CORRESPONDENCE_SMTP_TLS="none",
        CORRESPONDENCE_SMTP_CONNECTIONS=str(connections),
        CORRESPONDENCE_LOG_LEVEL="warning",
    )
    pg_pid = pg.postmaster_pid() or 0
    before = (cpu_seconds(smtp.pid), cpu_seconds(pg_pid))
    logfile = open(OUT / "worker.log", "wb")  # noqa: SIM115 - the child's for its lifetime
    worker = subprocess.Popen(
        [venv_bin("correspondence"), "worker"], env=env, cwd=ROOT, stdout=logfile, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        log(f"worker {worker.pid} draining; SMTP server {smtp.pid} on port {port}")
        asyncio.run(wait_until_done(url, emails, timeout=600))
        worker_cpu = cpu_seconds(worker.pid)
        smtp_cpu = cpu_seconds(smtp.pid) - before[0]
        pg_cpu = cpu_seconds(pg_pid) - before[1]
    finally:
        stop(worker)
        stop(smtp)
        logfile.close()
    ok, send, e2e = asyncio.run(timings(url))
    records = [json.loads(line) for line in smtp_log.read_text().splitlines() if line]
    to = [r["to"] for r in records if r["kind"] == "message"]
    run = Run(emails, send, e2e, len(set(to)), len(to) - len(set(to)), worker_cpu, smtp_cpu, pg_cpu)
    if ok != emails or run.received != emails or run.duplicates:
        raise SystemExit(f"expected {emails} e-mails once each: {ok} succeeded, {run.received} received, "
                         f"{run.duplicates} duplicates")  # fmt: skip
    log(f"{emails} e-mails: notify {run.send_rate:,.0f}/s, end to end {run.end_to_end_rate:,.0f}/s")
    return run


def section(runs: list[Run], args: argparse.Namespace) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    send = [r.send_rate for r in runs]
    e2e = [r.end_to_end_rate for r in runs]
    cpu = os.cpu_count()
    lines = [
        BEGIN,
        "## Notifications: e-mails per second (`bench/notifications.py`)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} × {cpu} vCPU, commit "
        f"`{commit}`. Command: `make bench-notifications` (= `.venv/bin/python bench/notifications.py "
        f"--emails {args.emails} --runs {args.runs} --connections {args.connections}`).",
        "",
        f"- Setup: {args.emails:,} correspondences initialized in requests of {args.per_request} "
        "recipients (GenericAltinnMessage, channel Email, every recipient with an e-mail address), then "
        "one `correspondence worker` process (job batch 100) publishes them, processes the orders and "
        f"sends through `SmtpEmailSender` ({args.connections} pooled SMTP connections, no TLS) to an "
        "aiosmtpd server process on 127.0.0.1 (`tests/smtp_server.py`, one JSON line per message). "
        "Worker, SMTP server and embedded PostgreSQL share the machine.",
        "- *Notify* = e-mails / (last accepted e-mail − first order processed: texts, addresses and "
        "delivery rows written, then sent); *end to end* = e-mails / (last accepted e-mail − first "
        "publish). Times from the database rows (`sent` per address is when the server accepted it). "
        "Each run checks that every address got exactly one message.",
        "",
        "| run | e-mails | notify e-mails/s | end to end e-mails/s | "
        "CPU s per 1,000: worker / SMTP server / PostgreSQL |",
        "|---|---|---|---|---|",
    ]
    for i, r in enumerate(runs, 1):
        k = r.emails / 1000
        lines.append(
            f"| {i} | {r.emails:,} | {r.send_rate:,.0f} | {r.end_to_end_rate:,.0f} | "
            f"{r.worker_cpu / k:.2f} / {r.smtp_cpu / k:.2f} / {r.postgres_cpu / k:.2f} |"
        )
    verdict = "met" if statistics.median(e2e) >= TARGET else "NOT met"
    lines += [
        "",
        f"Median: **{statistics.median(e2e):,.0f} e-mails/s end to end** (publish included), "
        f"{statistics.median(send):,.0f}/s from order processing on. Target ≥ {TARGET:,.0f} e-mails/s: "
        f"**{verdict}**.",
        "",
        ANALYSIS.rstrip("\n"),
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    replace_section(RESULTS, BEGIN, END, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--emails", type=int, default=20_000)
    parser.add_argument("--per-request", type=int, default=500)
    parser.add_argument("--connections", type=int, default=16, help="CORRESPONDENCE_SMTP_CONNECTIONS")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-report", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args()
    (OUT / "data").mkdir(parents=True, exist_ok=True)
    pg = EmbeddedPostgres(OUT / "data" / "pgdata")
    try:
        base = pg.start()
        pg.hold()
        runs = [one_run(base, pg, args.emails, args.per_request, args.connections) for _ in range(args.runs)]
    finally:
        pg.stop()
    text = section(runs, args)
    print(text)
    if not args.no_report:
        write_section(text)
        log(f"wrote {RESULTS.relative_to(ROOT)}")
    shutil.rmtree(OUT / "data" / "outbox", ignore_errors=True)


if __name__ == "__main__":
    main()
