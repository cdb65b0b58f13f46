"""Initialize load benchmark: wrk against `POST /correspondence/api/v1/correspondence`.

Sets up its own embedded PostgreSQL under bench/out/data (tuned as initialize-ceiling.md §1), a
resource, a 60,000-person contact registry and (by default) 1 M pre-filled correspondences; starts
`correspondence serve --no-worker` and the bare baseline app (bench/baseline_app.py); runs

  (a) 1 recipient, wrk -t1 -c32      (b) 100 recipients, -c32      (c) 500 recipients, -c8
  baseline `/create`, 1-recipient body, -c32

each as a 3 s warm-up and a 15 s measured window with --latency, checks in the database that every
request wrote its rows, samples RSS and CPU, stops everything it started and rewrites its section of
bench/RESULTS.md (other scripts keep theirs there).

    .venv/bin/python bench/initialize.py [--runs 2] [--duration 15] [--prefill 1000000] [--rev HEAD]
                                         [--api-workers 2]   # serve --workers 2

With --patch FILE the same commit is also measured with the diff applied (scenarios a+, b+, c+, side by
side); with --py-spy every window of the API is profiled (see profile_summary.py). bench/README.md has more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import random
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    RssSampler,
    Server,
    box_busy,
    cpu_delta,
    cpu_snapshot,
    db_url,
    log,
    national_ids,
    own_cpu,
    run_cli,
    stop_server,
    venv_bin,
)
from common import start_server as common_start_server

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
DATA = OUT / "data"
PGDATA = DATA / "pgdata"
LOGS = OUT / "logs"
RESULTS = BENCH / "RESULTS.md"
LUA = BENCH / "multi.lua"

OWNER_ORG = "991825827"
RESOURCE_ID = "bench-initialize"
SCOPES = "altinn:correspondence.write altinn:serviceowner"
APP_PORT = 18080
BASELINE_PORT = 18081
PATCHED_PORT = 18082
DEFAULTS_PORT = 18083
PATH_INITIALIZE = "/correspondence/api/v1/correspondence"
PERSON_URN = "urn:altinn:person:identifier-no:"

PG_SETTINGS = {
    "shared_buffers": "2GB",
    "max_wal_size": "4GB",
    "wal_compression": "on",
    "checkpoint_timeout": "15min",
    "max_connections": "200",
}

# bench/RESULTS.md is shared: other benchmark scripts keep their own sections in it, so this one only
# ever replaces the part between its markers (and keeps the hand-written analysis inside it).
SECTION_BEGIN = "<!-- initialize:begin (bench/initialize.py rewrites this section) -->"
SECTION_END = "<!-- initialize:end -->"
ANALYSIS_BEGIN = "<!-- initialize-analysis:begin (kept when bench/initialize.py rewrites the section) -->"
ANALYSIS_END = "<!-- initialize-analysis:end -->"
# The first version wrote the whole file, with these markers around its analysis.
LEGACY_TITLE = "# Initialize load benchmark — results"
LEGACY_ANALYSIS = (
    "<!-- analysis:begin (kept when the script rewrites this file) -->",
    "<!-- analysis:end -->",
)
TITLE = "# Benchmark results"


# --- small helpers ------------------------------------------------------------------------------


# Where the service's code comes from: None = this working tree (the editable install), else a
# directory holding `src/` and `migrations/` exported from a commit (--rev), put first on PYTHONPATH.
SOURCE: dict[str, Path | None] = {"tree": None, "patched": None}


def export_revision(rev: str, patch: Path | None = None) -> Path:
    """`git archive` src/ and migrations/ of `rev` into bench/out/tree-<sha>[-<patch>]/, patched if asked."""
    verify = ["git", "rev-parse", "--verify", rev + "^{commit}"]
    sha = subprocess.run(verify, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    dest = OUT / (f"tree-{sha[:12]}" + (f"-{patch.stem}" if patch else ""))
    if patch is not None:
        shutil.rmtree(dest, ignore_errors=True)
    if not (dest / "src").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha, "src", "migrations"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        if patch is not None:
            subprocess.run(["patch", "-p1", "-s", "-d", str(dest), "-i", str(patch.resolve())], check=True)
    return dest


def child_env(tree: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment for our children: no inherited CORRESPONDENCE_* settings, ours on top, and the
    service's code from `tree` (default: the measured source) when it is not the working tree."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRESPONDENCE_")}
    tree = tree or SOURCE["tree"]
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree / "src"), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


# The access log is on, at the default level, as operators run the service (`--access-log off` to compare).
ACCESS_LOG = {"on": True}


def app_env(tree: Path | None = None) -> dict[str, str]:
    return child_env(
        tree,
        CORRESPONDENCE_DATA_DIR=str(DATA),
        CORRESPONDENCE_ACCESS_LOG="true" if ACCESS_LOG["on"] else "false",
        CORRESPONDENCE_LOG_LEVEL="info",
    )


def cli(*args: str) -> str:
    return run_cli(app_env(), *args)


def _load(name: str) -> ModuleType:
    """A module from bench/ (bench is a directory of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_baseline() -> ModuleType:
    return _load("baseline_app")


def profile_summary() -> ModuleType:
    return _load("profile_summary")


# --- embedded PostgreSQL ------------------------------------------------------------------------


def postmaster_pid() -> int | None:
    pidfile = PGDATA / "postmaster.pid"
    if not pidfile.exists():
        return None
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (ValueError, OSError):
        return None
    return pid if psutil.pid_exists(pid) else None


def stop_postgres() -> None:
    pid = postmaster_pid()
    if pid is None:
        return
    log(f"stopping PostgreSQL (postmaster {pid}, SIGINT = fast shutdown)")
    os.kill(pid, signal.SIGINT)
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(pid).wait(60)


def start_postgres() -> str:
    """Start (or join) the embedded server in a child process; returns the URI of database `postgres`."""
    code = (
        "import pgserver, sys; "
        f"s = pgserver.get_server({str(PGDATA)!r}, cleanup_mode=None); "
        "sys.stdout.write(s.get_uri('postgres'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"could not start the embedded PostgreSQL:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def hold_postgres() -> None:
    """Register this process as a user of the embedded server. The service's CLI verbs and `serve`
    stop the server when its last user exits; while we hold it, it stays up until stop_postgres()."""
    import warnings

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver

    pgserver.get_server(PGDATA, cleanup_mode=None)


async def tune_postgres(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for name, value in PG_SETTINGS.items():
            await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    finally:
        await conn.close()


async def show_settings(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        names = [*PG_SETTINGS, "fsync", "synchronous_commit", "autovacuum", "server_version"]
        return {n: str(await conn.fetchval(f"SHOW {n}")) for n in names}
    finally:
        await conn.close()


# --- data: identities, contacts, bodies -----------------------------------------------------------

_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


@dataclass
class Person:
    ssn: str
    email: str | None
    mobile: str | None
    reserved: bool


def make_contacts(count: int, rng: random.Random) -> list[Person]:
    """85 % e-mail + mobile, 10 % e-mail only, 5 % neither; 1 % reserved against digital mail."""
    people: list[Person] = []
    for i, ssn in enumerate(national_ids(count, rng)):
        draw = rng.random()
        email = f"person{i}@example.no" if draw < 0.95 else None
        mobile = f"+479{i:07d}" if draw < 0.85 else None
        people.append(Person(ssn, email, mobile, rng.random() < 0.01))
    return people


def iso_ms(dt: datetime) -> str:
    """JavaScript's Date.toISOString(), as the k6 script sends."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def load_test_body(recipients: list[str], now: datetime) -> str:
    """The upstream k6 body (Test/Altinn.Correspondence.LoadTests/data/correspondence-json.js)."""
    body = {
        "Correspondence": {
            "resourceId": RESOURCE_ID,
            "sender": "0192:" + OWNER_ORG,
            "sendersReference": "1",
            "content": {
                "language": "nb",
                "messageTitle": "Meldingstittel",
                "messageSummary": "Ett sammendrag for meldingen",
                "messageBody": "# meldingsteksten. Som kan være plain text eller markdown ",
                "attachments": [],
            },
            "visibleFrom": iso_ms(now),
            "allowSystemDeleteAfter": iso_ms(now + timedelta(days=153)),
            "dueDateTime": iso_ms(now + timedelta(days=31)),
            "externalReferences": [],
            "propertyList": {},
            "replyOptions": [
                {"linkURL": "https://www.test.no", "linkText": "test"},
                {"linkURL": "https://test.no", "linkText": "test"},
            ],
            "notification": {
                "notificationTemplate": 0,
                "notificationChannel": 3,
                "SendReminder": True,
                "EmailBody": "Test av varsel",
                "EmailSubject": "Dette er innholdet i ett varsel",
                "SmsBody": "Dette er innholdet i ett testvarsel",
                "ReminderEmailBody": "Dette er test av revarsling ",
                "ReminderEmailSubject": "Test av revarsel",
                "ReminderSmsBody": "Dette er en test av revarslingl",
            },
            "isReservable": True,
        },
        "Recipients": recipients,
        "existingAttachments": [],
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def write_bodies(people: list[Person], rng: random.Random) -> dict[int, tuple[Path, int]]:
    """1,000 one-recipient, 50 hundred-recipient and 20 five-hundred-recipient bodies, one per line."""
    now = datetime.now(UTC)
    # one-recipient bodies: never a reserved person (that is a 422 by design), always someone with contact
    singles = [p.ssn for p in people if not p.reserved and p.email is not None]
    everyone = [p.ssn for p in people]
    plan = {1: [[s] for s in rng.sample(singles, 1000)]}
    plan[100] = [rng.sample(everyone, 100) for _ in range(50)]
    plan[500] = [rng.sample(everyone, 500) for _ in range(20)]
    files: dict[int, tuple[Path, int]] = {}
    for n, bodies in plan.items():
        path = OUT / f"bodies_{n}.txt"
        lines = [load_test_body(recipients, now) for recipients in bodies]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files[n] = (path, round(statistics.mean(len(line.encode()) for line in lines)))
    return files


async def fill_database(base_url: str, people: list[Person], prefill: int, baseline: ModuleType) -> None:
    app_url = db_url(base_url, "correspondence")
    conn = await asyncpg.connect(app_url)
    try:
        await conn.execute("TRUNCATE contacts")
        await conn.copy_records_to_table(
            "contacts",
            records=[(PERSON_URN + p.ssn, p.email, p.mobile, p.reserved) for p in people],
            columns=["party", "email", "mobile", "reserved"],
        )
        if prefill:
            log(f"pre-filling {prefill:,} correspondences (3 statuses, 2 orders, 1 done job each)")
            started = time.monotonic()
            columns = {
                r["column_name"]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'correspondences'"
                )
            }
            for sql in prefill_sql(prefill, columns):
                await conn.execute(sql)
            log(f"  … {time.monotonic() - started:.0f} s")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()

    admin = await asyncpg.connect(base_url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = 'baseline'"):
            await admin.execute("CREATE DATABASE baseline")
    finally:
        await admin.close()
    conn = await asyncpg.connect(db_url(base_url, "baseline"))
    try:
        await conn.execute(baseline.SCHEMA)
        if prefill:
            log(f"pre-filling the baseline's tables with {prefill:,} correspondences")
            started = time.monotonic()
            for sql in baseline.prefill_sql(prefill):
                await conn.execute(sql)
            log(f"  … {time.monotonic() - started:.0f} s")
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


def _uuid7_sql(salt: str, epoch_ms: int) -> str:
    """A time-ordered (UUIDv7-shaped) id for row g: epoch_ms + g milliseconds, md5-derived random bits."""
    return (
        f"(lpad(to_hex({epoch_ms}::bigint + g), 12, '0') || '7' || substr(md5(g::text || '{salt}'), 1, 3)"
        f" || '8' || substr(md5(g::text || '{salt}'), 4, 15))::uuid"
    )


def prefill_sql(rows: int, columns: set[str]) -> list[str]:
    """Old, published correspondences in the service's own tables, written set-based. `columns` are
    those of `correspondences`: the current-status columns exist from migration 0002 on."""
    epoch_ms = int((time.time() - 60 * 86400) * 1000)  # one value for every statement: ids must match
    cid = _uuid7_sql("c", epoch_ms)
    series = f"FROM generate_series(1, {rows}) g"
    created = f"to_timestamp(({epoch_ms}::bigint + g) / 1000.0)"
    current = current_values = ""
    if {"status", "status_changed"} <= columns:
        current, current_values = ", status, status_changed", f", 2, {created}"  # Published
    return [
        f"""INSERT INTO correspondence_contents (id, language, message_title, message_summary, message_body,
              reply_options, property_list, external_references, notification, created)
            SELECT {cid}, 'nb', 'Meldingstittel', 'Ett sammendrag for meldingen',
              '# meldingsteksten. Som kan være plain text eller markdown ',
              '[{{"linkURL": "https://www.test.no", "linkText": "test"}}]', '{{}}', '[]', NULL, {created}
            {series}""",
        f"""INSERT INTO correspondences (id, content_id, resource_id, recipient, sender, service_owner_id,
              senders_reference, requested_publish_time, due_date_time, published, is_confirmation_needed,
              is_confidential, allow_forwarding, created{current})
            SELECT {cid}, {cid}, '{RESOURCE_ID}',
              '{PERSON_URN}' || lpad((g % 60000)::text, 11, '0'),
              'urn:altinn:organization:identifier-no:{OWNER_ORG}', '{OWNER_ORG}', '1', {created},
              {created} + interval '31 days', {created}, false, false, false, {created}{current_values}
            {series}""",
        f"""INSERT INTO correspondence_statuses (correspondence_id, status, status_text, status_changed)
            SELECT {cid}, s.status, s.txt, {created} {series}
            CROSS JOIN (VALUES (0::smallint, 'Initialized'), (1::smallint, 'ReadyForPublish'),
                               (2::smallint, 'Published')) s(status, txt)""",
        f"""INSERT INTO notification_orders (id, correspondence_id, is_reminder, template, channel,
              requested_send_time, recipient, email_address, mobile_number, status, processing_status,
              created)
            SELECT CASE WHEN o.rem THEN {_uuid7_sql("r", epoch_ms)} ELSE {_uuid7_sql("m", epoch_ms)} END,
              {cid}, o.rem, 0, 3, {created}, '{PERSON_URN}' || lpad((g % 60000)::text, 11, '0'),
              'person@example.no', '+4790000000', 0, 'Completed', {created}
            {series} CROSS JOIN (VALUES (false), (true)) o(rem)""",
        f"""INSERT INTO jobs (task, ref_id, run_at, status, attempts, created, finished)
            SELECT 'correspondence.publish', {cid}, {created}, 2, 1, {created}, {created} {series}""",
    ]


# --- processes ----------------------------------------------------------------------------------


def start_server(name: str, cmd: list[str], env: dict[str, str], health_url: str) -> Server:
    return common_start_server(name, cmd, env, health_url, LOGS)


@dataclass
class Quiet:
    """Keeps other people's work on this shared machine out of the measured windows."""

    pg_pid: int
    limit: float  # CPU % (100 = one core) that everything else may use during a window
    max_wait: float  # seconds to wait for a quiet machine before measuring anyway
    retries: int  # how often to redo a window in which everything else used more than `limit`

    def others(self, seconds: float) -> float:
        ours0, box0, t0 = own_cpu(self.pg_pid), box_busy(), time.monotonic()
        time.sleep(seconds)
        ours1, box1, wall = own_cpu(self.pg_pid), box_busy(), time.monotonic() - t0
        return 100 * ((box1 - box0) - cpu_delta(ours0, ours1)) / wall

    def wait(self) -> None:
        deadline = time.monotonic() + self.max_wait
        while True:
            other = self.others(2.0)
            if other <= self.limit:
                return
            if time.monotonic() > deadline:
                log(f"other processes still use {other:.0f} % CPU after {self.max_wait:.0f} s; going on")
                return
            log(f"other processes use {other:.0f} % CPU; waiting for a quiet machine")


# --- one measured scenario ----------------------------------------------------------------------


@dataclass
class Scenario:
    key: str
    label: str
    recipients: int
    connections: int
    baseline: bool = False
    patched: bool = False  # served by the --patch copy of the code
    defaults: bool = False  # served by `correspondence serve` as a user starts it (worker in process)


SCENARIOS = [
    Scenario("base", "baseline `/create`, 1-recipient body", 1, 32, baseline=True),
    Scenario("a", "(a) 1 recipient", 1, 32),
    Scenario("a+", "(a) 1 recipient, patched", 1, 32, patched=True),
    Scenario("b", "(b) 100 recipients", 100, 32),
    Scenario("b+", "(b) 100 recipients, patched", 100, 32, patched=True),
    Scenario("c", "(c) 500 recipients", 500, 8),
    Scenario("c+", "(c) 500 recipients, patched", 500, 8, patched=True),
    Scenario("based", "baseline `/create`, 1-recipient body, beside (d)", 1, 32, baseline=True),
    Scenario("d", "(d) 1 recipient, `serve` defaults (worker in process)", 1, 32, defaults=True),
]
ORDER = [s.key for s in SCENARIOS]
BY_KEY = {s.key: s for s in SCENARIOS}


def schedule(runs: int, bulk_runs: int, only: set[str], patched: bool) -> list[tuple[Scenario, int]]:
    """The windows in the order they run. The single-recipient windows alternate with the bare
    baseline's (bare, ours, bare, ours, …) so that each ratio compares windows seconds apart: this
    machine's speed drifts 2× within minutes. Bulk follows; then `serve` as a user starts it, again
    alternating with the baseline."""
    keys: list[tuple[str, int]] = []
    for run in range(1, runs + 1):
        keys += [("base", run), ("a", run), ("a+", run)]
    for run in range(1, bulk_runs + 1):
        keys += [("b", run), ("b+", run), ("c", run), ("c+", run)]
    for run in range(1, runs + 1):
        keys += [("based", run), ("d", run)]
    out = []
    for key, run in keys:
        sc = BY_KEY[key]
        if (only and key not in only) or (sc.patched and not patched):
            continue
        out.append((sc, run))
    return out


@dataclass
class Measurement:
    scenario: str
    label: str
    run: int
    recipients: int
    connections: int
    requests: int
    seconds: float
    rps: float
    cps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int
    written_requests: int
    written_correspondences: int
    rows_consistent: bool
    in_flight_at_stop: int
    server_rss_mb: float
    server_cpu: float
    pg_cpu: float
    wrk_cpu: float
    box_cpu: float
    other_cpu: float
    attempt: int
    body_bytes: int
    row_check: dict[str, int] = field(default_factory=dict)
    # (d) only: correspondences of the window not yet published when wrk stopped, and the seconds
    # until the worker had published them all (-1: not measured)
    backlog_at_end: int = -1
    drain_seconds: float = -1.0


# `statuses`: the rows of every history, stored or (migration 0023 on) implied by `initial_status`.
APP_COUNTS = """SELECT (SELECT count(*) FROM correspondence_contents) AS requests,
  (SELECT count(*) FROM correspondences) AS correspondences,
  (SELECT count(*) FROM correspondence_statuses) + {implied} AS statuses,
  (SELECT count(*) FROM notification_orders) AS orders,
  (SELECT count(*) FROM jobs) AS jobs"""
BASELINE_COUNTS = """SELECT (SELECT count(*) FROM b_content) AS requests,
  (SELECT count(*) FROM b_correspondence) AS correspondences,
  (SELECT count(*) FROM b_status) AS statuses,
  (SELECT count(*) FROM b_notification) AS orders,
  0::bigint AS jobs"""


UNPUBLISHED = "SELECT count(*) FROM correspondences WHERE created >= $1 AND status IN (0, 1)"
IDLE_CHECK = """SELECT EXISTS (SELECT 1 FROM jobs WHERE status IN (0, 1) AND run_at <= now())
  OR EXISTS (SELECT 1 FROM event_outbox WHERE dispatched IS NULL)"""


async def backlog(url: str, since: datetime, limit: float = 120.0) -> tuple[int, float]:
    """(correspondences created since `since` still unpublished now, seconds until none are left)."""
    conn = await asyncpg.connect(url)
    try:
        t0 = time.monotonic()
        first = int(await conn.fetchval(UNPUBLISHED, since))
        left = first
        while left and time.monotonic() - t0 < limit:
            await asyncio.sleep(0.25)
            left = int(await conn.fetchval(UNPUBLISHED, since))
        drained = time.monotonic() - t0 if not left else -1.0
        # The next window (the baseline's) should not share the machine with this one's leftovers:
        # notifications, events and webhook work that publishing queued (at most a minute more:
        # notifications run at a few hundred a second, well behind a window's Initialize rate).
        while time.monotonic() - t0 < limit + 60 and await conn.fetchval(IDLE_CHECK):
            await asyncio.sleep(0.5)
        log(f"(d)'s worker idle {time.monotonic() - t0:.1f} s after the window")
        return first, drained
    finally:
        await conn.close()


async def discard_pending_work(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM jobs WHERE status IN (0, 1)")
        await conn.execute("UPDATE event_outbox SET dispatched = now() WHERE dispatched IS NULL")
    finally:
        await conn.close()


async def counts(url: str, baseline: bool) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        implied = "0"
        if not baseline and await conn.fetchval(
            "SELECT 1 FROM information_schema.columns"
            " WHERE table_name = 'correspondences' AND column_name = 'initial_status'"
        ):
            implied = """(SELECT count(*) + count(*) FILTER (WHERE initial_status <> 0) FROM correspondences
                          WHERE initial_status IS NOT NULL)"""
        row = await conn.fetchrow(BASELINE_COUNTS if baseline else APP_COUNTS.format(implied=implied))
        assert row is not None
        return dict(row)
    finally:
        await conn.close()


def run_wrk(url: str, bodies: Path, token: str, connections: int, seconds: int) -> dict[str, Any]:
    cmd = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
        "-s", str(LUA), url,
    ]  # fmt: skip
    env = dict(os.environ, BENCH_BODIES=str(bodies), BENCH_TOKEN=token)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = json.loads(line[len("BENCH_JSON ") :])
            result["text"] = done.stdout
            return result
    raise SystemExit(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")


def measure(
    sc: Scenario,
    run: int,
    *,
    target: str,
    server: Server,
    quiet: Quiet,
    attempt: int,
    db: str,
    bodies: tuple[Path, int],
    token: str,
    warmup: int,
    duration: int,
    py_spy: bool = False,
) -> Measurement:
    path, body_bytes = bodies
    pg_pid = quiet.pg_pid
    quiet.wait()
    log(f"run {run} {sc.label}: warm-up {warmup} s")
    run_wrk(target, path, token, sc.connections, warmup)
    time.sleep(1.0)  # let requests cut off at the end of the warm-up finish
    before = asyncio.run(counts(db, sc.baseline))
    server_cpu0, pg_cpu0, box0 = cpu_snapshot(server.pid), cpu_snapshot(pg_pid, reaped=True), box_busy()
    ours0 = own_cpu(pg_pid)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = RssSampler(server.pid)
    sampler.start()
    wall0 = time.monotonic()
    log(f"run {run} {sc.label}: measuring {duration} s")
    profile = OUT / f"pyspy-{sc.key}-{run}.txt"
    spy: subprocess.Popen[bytes] | None = None
    if py_spy:
        record = ["record", "--rate", "100", "--duration", str(duration), "--nonblocking", "--format", "raw"]
        spy = subprocess.Popen(
            [venv_bin("py-spy"), *record, "--output", str(profile), "--pid", str(server.pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    window_start = datetime.now(UTC)
    result = run_wrk(target, path, token, sc.connections, duration)
    wall = time.monotonic() - wall0
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu1, pg_cpu1, box1 = cpu_snapshot(server.pid), cpu_snapshot(pg_pid, reaped=True), box_busy()
    ours1 = own_cpu(pg_pid)
    peak = sampler.stop()
    left, drain = asyncio.run(backlog(db, window_start)) if sc.defaults else (-1, -1.0)
    time.sleep(1.0)
    after = asyncio.run(counts(db, sc.baseline))
    delta = {k: after[k] - before[k] for k in after}

    seconds = result["duration_us"] / 1e6
    n = sc.recipients
    consistent = delta["correspondences"] == delta["requests"] * n
    if sc.defaults:
        # the worker publishes (and notifies) while we count: at least the two statuses of Initialize
        consistent = consistent and delta["statuses"] >= 2 * delta["correspondences"]
    elif not sc.baseline:
        # Initialized + ReadyForPublish (or Reserved); one publish job per request (and a due-date job)
        consistent = consistent and delta["statuses"] == 2 * delta["correspondences"]
        consistent = consistent and delta["jobs"] >= delta["requests"]
    else:
        consistent = consistent and delta["statuses"] == delta["requests"] == delta["orders"]
    wrk_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    m = Measurement(
        scenario=sc.key,
        label=sc.label,
        run=run,
        recipients=n,
        connections=sc.connections,
        requests=result["requests"],
        seconds=seconds,
        rps=result["requests"] / seconds,
        cps=result["requests"] * n / seconds,
        p50_ms=result["p50_us"] / 1000,
        p90_ms=result["p90_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        p999_ms=result["p999_us"] / 1000,
        max_ms=result["max_us"] / 1000,
        non2xx=result["non2xx"],
        socket_errors=result["connect"] + result["read"] + result["write"] + result["timeout"],
        written_requests=delta["requests"],
        written_correspondences=delta["correspondences"],
        rows_consistent=consistent,
        in_flight_at_stop=delta["requests"] - result["requests"],
        server_rss_mb=peak / 2**20,
        server_cpu=100 * cpu_delta(server_cpu0, server_cpu1) / wall,
        pg_cpu=100 * cpu_delta(pg_cpu0, pg_cpu1) / wall,
        wrk_cpu=100 * wrk_cpu / wall,
        box_cpu=100 * (box1 - box0) / wall,
        other_cpu=100 * ((box1 - box0) - cpu_delta(ours0, ours1)) / wall,  # ours0/1 include wrk once reaped
        attempt=attempt,
        body_bytes=body_bytes,
        row_check=delta,
        backlog_at_end=left,
        drain_seconds=drain,
    )
    if spy is not None:
        spy.wait(30)
        if profile.exists():
            summary = profile_summary().summarize(profile, m.server_cpu * 1e4 / m.rps if m.rps else None)
            summary_path = OUT / f"profile-{sc.key}-{run}.md"
            summary_path.write_text(summary, encoding="utf-8")
            log(f"py-spy profile in {profile.relative_to(ROOT)}, summary in {summary_path.relative_to(ROOT)}")
    log(
        f"run {run} {sc.label}: {m.rps:,.0f} req/s, {m.cps:,.0f} corr/s, p50 {m.p50_ms:.1f} ms, "
        f"p99 {m.p99_ms:.1f} ms, non-2xx {m.non2xx}, socket errors {m.socket_errors}, "
        f"rows {'ok' if consistent else 'MISMATCH'} {delta}, server {m.server_cpu:.0f} %, "
        f"PostgreSQL {m.pg_cpu:.0f} %, wrk {m.wrk_cpu:.0f} %, box {m.box_cpu:.0f} %, "
        f"other {m.other_cpu:.0f} %"
        + (f", unpublished at the end {left:,}, all published {drain:.1f} s later" if sc.defaults else "")
    )
    return m


def preflight(app_url: str, base_url: str, token: str, bodies: dict[int, tuple[Path, int]]) -> None:
    """One request of each kind must succeed before anything is measured."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(timeout=30) as client:
        for n, (path, _) in bodies.items():
            body = path.read_text(encoding="utf-8").splitlines()[0].encode()
            r = client.post(app_url, content=body, headers=headers)
            if r.status_code != 200 or len(r.json()["correspondences"]) != n:
                raise SystemExit(f"preflight with {n} recipients: {r.status_code} {r.text[:2000]}")
            statuses = {c["status"] for c in r.json()["correspondences"]}
            log(f"preflight {n} recipient(s): 200, statuses {sorted(statuses)}")
        body = bodies[1][0].read_text(encoding="utf-8").splitlines()[0].encode()
        r = client.post(base_url, content=body, headers=headers)
        if r.status_code != 200:
            raise SystemExit(f"preflight baseline: {r.status_code} {r.text[:2000]}")


# --- report -------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    versions = ", ".join(
        f"{p} {metadata.version(p)}"
        for p in ("fastapi", "starlette", "pydantic", "uvicorn", "uvloop", "httptools", "asyncpg", "orjson")
    )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    tree = SOURCE["tree"]
    if tree is not None:
        source = f"commit `{tree.name.removeprefix('tree-')}` (exported with `git archive`, `--rev`)"
        patched = SOURCE["patched"]
        if patched is not None:
            name = patched.name.removeprefix(tree.name + "-")
            source += f"; the *patched* rows run the same commit with `bench/patches/{name}.diff` applied"
    else:
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "migrations"],
            cwd=ROOT, capture_output=True, text=True, check=False,
        ).stdout.splitlines()  # fmt: skip
        source = f"working tree at commit `{commit.stdout.strip()}`" + (
            f" with uncommitted changes in {len(dirty)} file(s) under src/ or migrations/" if dirty else ""
        )
    return {
        "source": source,
        "nproc": str(os.cpu_count()),
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0].split(" Copyright")[0],
        "commit": commit.stdout.strip(),
    }


def _fmt(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def _verdict(values: list[bool]) -> str:
    if all(values):
        return "**met**" + (f" (all {len(values)} runs)" if len(values) > 1 else "")
    if any(values):
        return f"**met in {sum(values)} of {len(values)} runs**"
    return "**not met**"


def write_report(
    ms: list[Measurement],
    *,
    path: Path,
    argv: list[str],
    started: datetime,
    info: dict[str, str],
    pg: dict[str, str],
    bodies: dict[int, tuple[Path, int]],
    opts: argparse.Namespace,
    people: list[Person],
) -> None:
    by = {(m.scenario, m.run): m for m in ms}
    runs = sorted({m.run for m in ms})

    def series(key: str) -> list[Measurement]:
        return [by[(key, r)] for r in runs if (key, r) in by]

    reserved = sum(p.reserved for p in people)
    both = sum(p.email is not None and p.mobile is not None for p in people)
    email_only = sum(p.email is not None and p.mobile is None for p in people)
    lines: list[str] = []
    w = lines.append
    w(SECTION_BEGIN)
    w("## Initialize: `POST /correspondence/api/v1/correspondence`")
    w("")
    w(
        "Written by `bench/initialize.py`; the *What limits it* text is written by hand and kept when the "
        "script rewrites this section."
    )
    w("")
    w("### Run")
    w("")
    w("```bash")
    w(shlex.join(argv))
    w("```")
    w("")
    w(f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}. Code measured: {info['source']}.")
    w(
        f"- Machine: {info['nproc']} vCPU ({info['cpu']}), {info['ram']} RAM, Linux {info['kernel']}; "
        "load generator, API and PostgreSQL share the cores."
    )
    w(f"- Python {info['python']}; {info['packages']}; {info['wrk']}.")
    w(
        f"- PostgreSQL {pg['server_version']} embedded (pgserver) under `bench/out/data/pgdata`, "
        "over a Unix socket: "
        + ", ".join(f"`{k}={pg[k]}`" for k in PG_SETTINGS)
        + f"; `fsync={pg['fsync']}`, `synchronous_commit={pg['synchronous_commit']}`, "
        f"`autovacuum={pg['autovacuum']}`."
    )
    w(
        "- API for (a), (b), (c): `correspondence serve --no-worker`, as in production where workers run in "
        f"their own processes; access log **{opts.access_log}** (`CORRESPONDENCE_ACCESS_LOG`, "
        "`CORRESPONDENCE_LOG_LEVEL=info`, one JSON line per request to a file), default pool. The publish "
        "jobs each Initialize enqueues are written but not run in these windows. API for (d): "
        "`correspondence serve` with its defaults (API and job worker in one process, access log on): "
        "everything it accepts is also published, and notified, by the same process."
    )
    w(
        "- Baseline: `bench/baseline_app.py` — FastAPI + asyncpg, body parsed by a FastAPI body parameter, "
        "one 4-INSERT transaction per request (BEGIN, 4 × INSERT, COMMIT), pool of 10 with asyncpg's default "
        "reset, no auth or validation; same uvicorn settings; own database `baseline` on the same server."
    )
    w(
        f"- Data: {len(people):,} persons in the contact registry ({both:,} e-mail + mobile, "
        f"{email_only:,} e-mail only, {len(people) - both - email_only:,} none; {reserved:,} reserved, "
        f"never in a 1-recipient body). Pre-filled with {opts.prefill:,} old correspondences (3 statuses, "
        "2 orders, 1 done job each) and the baseline's tables with as many; both grow during the run."
    )
    w(
        "- Bodies: the upstream k6 `correspondence-json.js` body (`Correspondence`/`Recipients`, "
        "PascalCase notification keys, template 0, channel 3 SmsPreferred, `SendReminder` true, two https "
        "reply options, due date +31 days, unknown `visibleFrom`/`isReservable`, deprecated `sender`). "
        "wrk cycles through "
        + ", ".join(
            f"{ {1: 1000, 100: 50, 500: 20}[n]:,} different {n}-recipient bodies ({size:,} B)"
            for n, (_, size) in bodies.items()
        )
        + "; every request carries the same RS256 bearer token."
    )
    w(
        f"- Load: `wrk -t1 -cN -d{opts.warmup}s` warm-up, then `wrk -t1 -cN -d{opts.duration}s --timeout 10s "
        "--latency -s bench/multi.lua`. Windows run in this order: baseline and (a) alternating "
        f"({opts.runs} of each), (b) and (c) ({opts.bulk_runs} of each), then baseline and (d) alternating "
        f"({opts.runs} of each). Before the first (d) window the publish jobs the earlier windows left "
        "(their API ran no worker) are deleted, so the (d) worker starts with an empty queue."
    )
    w(
        "- CPU is summed per process tree over the measured window (100 % = one core). *Other* is the "
        "whole machine's busy time minus everything this script runs: other people's work shares this "
        f"machine, so each window waits for a quiet machine and is measured again (up to {opts.retries} "
        f"times) when others used more than {opts.max_other_cpu:.0f} % during it. RSS is the peak of the "
        "server process, sampled every 0.25 s."
    )
    w("")
    w("### Results")
    w("")
    w(
        "| Scenario | Run | req/s | correspondences/s | p50 ms | p99 ms | server peak RSS MB | server CPU % "
        "| PostgreSQL CPU % | wrk CPU % | other CPU % |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for m in sorted(ms, key=lambda m: (ORDER.index(m.scenario), m.run)):
        w(
            f"| {m.label}, c{m.connections} | {m.run} | {_fmt(m.rps)} | {_fmt(m.cps)} | {m.p50_ms:.1f} | "
            f"{m.p99_ms:.1f} | {m.server_rss_mb:.0f} | {m.server_cpu:.0f} | {m.pg_cpu:.0f} | {m.wrk_cpu:.0f} "
            f"| {m.other_cpu:.0f}{'' if m.attempt == 1 else f' (attempt {m.attempt})'} |"
        )
    w("")

    def median_ratio(key: str, base_key: str) -> float | None:
        ours, bare = series(key), series(base_key)
        if not ours or not bare:
            return None
        return statistics.median(m.rps for m in ours) / statistics.median(m.rps for m in bare)

    for key, base_key, what in (("a", "base", "(a)"), ("a+", "base", "(a), patched"), ("d", "based", "(d)")):
        ratio = median_ratio(key, base_key)
        if ratio is not None:
            w(
                f"**Ratio {what}** = median req/s of its {len(series(key))} windows ÷ median req/s of the "
                f"{len(series(base_key))} baseline windows alternating with them: **{ratio:.2f}×** "
                "(per pair: "
                + " · ".join(
                    f"{by[(key, r)].rps / by[(base_key, r)].rps:.2f}×"
                    for r in runs
                    if (key, r) in by and (base_key, r) in by
                )
                + ")."
            )
            w("")
    w("### Targets (issue 14)")
    w("")
    w("| Target | Code | Measured | Verdict |")
    w("|---|---|---|---|")
    for suffix, what in (("", "as committed"), ("+", "patched")):
        a, b, c = series("a" + suffix), series("b" + suffix), series("c" + suffix)
        ratio = median_ratio("a" + suffix, "base")
        if a and ratio is not None:
            w(
                f"| (a) ≥ 1.4× the bare app (ratio of medians, alternating windows), access log on, "
                f"`--no-worker` | {what} | {ratio:.2f}× | {_verdict([ratio >= 1.4])} |"
            )
            w(
                f"| (a) p99 ≤ 30 ms | {what} | "
                + " · ".join(f"{_fmt(m.rps)} req/s, p99 {m.p99_ms:.1f} ms" for m in a)
                + f" | {_verdict([m.p99_ms <= 30 for m in a])} |"
            )
        if b:
            w(
                f"| (b) ≥ 50,000 correspondences/s in 100-recipient requests | {what} | "
                + " · ".join(f"{_fmt(m.cps)}/s" for m in b)
                + f" | {_verdict([m.cps >= 50000 for m in b])} |"
            )
        if c:
            w(
                f"| (c) ≥ 50,000 correspondences/s in 500-recipient requests | {what} | "
                + " · ".join(f"{_fmt(m.cps)}/s" for m in c)
                + f" | {_verdict([m.cps >= 50000 for m in c])} |"
            )
    d, ratio_d = series("d"), median_ratio("d", "based")
    if d and ratio_d is not None:
        w(
            "| (d) `serve` as a user starts it ≥ 1.0× the bare app | as committed | "
            f"{ratio_d:.2f}× | {_verdict([ratio_d >= 1.0])} |"
        )
        w(
            "| (d) the in-process worker keeps up: what a window accepted is published by its end "
            "(at most one second's worth left, gone within 5 s) | as committed | "
            + " · ".join(f"{m.backlog_at_end:,} left, all published after {m.drain_seconds:.1f} s" for m in d)
            + f" | {_verdict([0 <= m.backlog_at_end <= m.rps and 0 <= m.drain_seconds <= 5 for m in d])} |"
        )
    ours = [m for m in ms if not m.scenario.startswith("base")]
    if ours:
        w(
            "| server RSS ≤ 150 MB under load | as committed | peak "
            + f"{max(m.server_rss_mb for m in ours):.0f} MB "
            + f"| {_verdict([m.server_rss_mb <= 150 for m in ours])} |"
        )
    w("")
    w("### Correctness of every window")
    w("")
    w(
        "Rows are counted in the database before and after each measured window. *Requests written* is the "
        "number of new content rows (one per Initialize request). It may exceed wrk's completed requests by "
        "the requests still in flight when wrk stopped (at most one per connection). Correspondences must "
        "equal requests written × recipients, with 2 statuses per correspondence and at least 1 job per "
        "request (one publish job naming all its correspondences; with a due date also one due-date job) "
        "(baseline: 1 row in each of its 4 tables per request)."
    )
    w("")
    w(
        "| Scenario | Run | wrk requests | non-2xx | socket errors | requests written | in flight at stop "
        "| correspondences written | = requests × recipients | statuses / orders / jobs |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|")
    for m in sorted(ms, key=lambda m: (ORDER.index(m.scenario), m.run)):
        rc = m.row_check
        w(
            f"| {m.label} | {m.run} | {m.requests:,} | {m.non2xx} | {m.socket_errors} "
            f"| {m.written_requests:,} | {m.in_flight_at_stop} | {m.written_correspondences:,} "
            f"| {'yes' if m.rows_consistent else '**NO**'} "
            f"| {rc['statuses']:,} / {rc['orders']:,} / {rc['jobs']:,} |"
        )
    w("")
    w("### CPU per request")
    w("")
    w("| Scenario | Run | server µs / request | PostgreSQL µs / request | PostgreSQL µs / correspondence |")
    w("|---|---|---|---|---|")
    for m in sorted(ms, key=lambda m: (ORDER.index(m.scenario), m.run)):
        per_req = 1e4 / m.rps if m.rps else 0.0  # (CPU % / 100) / rps in µs = CPU% * 1e4 / rps
        w(
            f"| {m.label} | {m.run} | {_fmt(m.server_cpu * per_req)} | {_fmt(m.pg_cpu * per_req)} | "
            f"{m.pg_cpu * per_req / m.recipients:,.1f} |"
        )
    w("")
    w("### What limits it")
    w("")
    splice_section(path, lines)
    (OUT / f"{path.stem}.json").write_text(
        json.dumps({"argv": argv, "machine": info, "postgres": pg, "runs": [asdict(m) for m in ms]}, indent=2)
    )


def splice_section(path: Path, lines: list[str]) -> None:
    """Re-read `path` now (others edit it too) and replace this script's section, keeping the analysis;
    the rest of the file is left alone. `lines` is the section up to its analysis."""
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    previous = ""
    for begin, end in ((ANALYSIS_BEGIN, ANALYSIS_END), LEGACY_ANALYSIS):
        if begin in current and end in current:
            previous = current.split(begin, 1)[1].split(end, 1)[0].strip("\n")
            break
    analysis = previous or "_(analysis to be written after looking at the numbers)_"
    section = "\n".join([*lines, ANALYSIS_BEGIN, analysis, ANALYSIS_END, SECTION_END])
    if SECTION_BEGIN in current and SECTION_END in current:
        head, rest = current.split(SECTION_BEGIN, 1)
        updated = head + section + rest.split(SECTION_END, 1)[1]
    elif current.startswith(LEGACY_TITLE) and LEGACY_ANALYSIS[1] in current:
        rest = current.split(LEGACY_ANALYSIS[1], 1)[1]
        updated = f"{TITLE}\n\n{section}\n" + rest
    elif current.startswith("# "):
        title, _, rest = current.partition("\n")
        updated = f"{title}\n\n{section}\n\n{rest.lstrip(chr(10))}"
    else:
        updated = f"{TITLE}\n\n{section}\n" + ("\n" + current if current else "")
    path.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--runs", type=int, default=3, help="alternating windows of the baseline and of (a), and again of (d)"
    )
    parser.add_argument("--bulk-runs", type=int, default=2, help="windows of each bulk scenario (b, c)")
    parser.add_argument(
        "--access-log", choices=("on", "off"), default="on", help="the API's access log (on: as run)"
    )
    parser.add_argument("--duration", type=int, default=15, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per scenario")
    parser.add_argument("--prefill", type=int, default=1_000_000, help="old correspondences to pre-fill")
    parser.add_argument("--contacts", type=int, default=60_000, help="persons in the contact registry")
    parser.add_argument("--only", default="", help="scenario keys: base,a,b,c (+ a+,b+,c+)")
    parser.add_argument("--no-report", action="store_true", help="do not write the report")
    parser.add_argument(
        "--report", type=Path, default=RESULTS, help="where to write it (raw data goes to bench/out)"
    )
    parser.add_argument(
        "--patch", type=Path, help="also measure --rev with this diff applied (patch -p1), side by side"
    )
    parser.add_argument(
        "--py-spy", action="store_true", help="profile the server in each window (implies --no-report)"
    )
    parser.add_argument("--max-other-cpu", type=float, default=15, help="CPU %% others may use in a window")
    parser.add_argument("--max-wait", type=float, default=300, help="seconds to wait for a quiet machine")
    parser.add_argument("--retries", type=int, default=2, help="re-measurements of a window others disturbed")
    parser.add_argument("--rev", default="", help="measure this commit (git archive), not the working tree")
    parser.add_argument(
        "--api-workers", type=int, default=1, help="API processes: `serve --workers N` (bench/processes.py)"
    )
    parser.add_argument("--json-out", type=Path, help="also write the raw measurements to this file")
    parser.add_argument(
        "--pg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a PostgreSQL setting on top of the tuned ones (repeatable; for A/B runs)",
    )
    opts = parser.parse_args()
    for setting in opts.pg:
        name, sep, value = setting.partition("=")
        if not sep or not name.replace("_", "").isalnum() or "'" in value:
            raise SystemExit(f"--pg {setting!r}: expected NAME=VALUE")
        PG_SETTINGS[name] = value
    ACCESS_LOG["on"] = opts.access_log == "on"
    argv = [".venv/bin/python", "bench/initialize.py", *sys.argv[1:]]
    started = datetime.now(UTC)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get update && apt-get install -y wrk")

    if opts.patch and not opts.rev:
        raise SystemExit("--patch needs --rev: the patched copy is compared with the same commit")
    if opts.rev:
        SOURCE["tree"] = export_revision(opts.rev)
        log(f"benchmarking {opts.rev} from {SOURCE['tree']}")
    if opts.patch:
        SOURCE["patched"] = export_revision(opts.rev, opts.patch)
        log(f"… and side by side the same with {opts.patch} applied, from {SOURCE['patched']}")
    servers: list[Server] = []
    try:
        stop_postgres()  # a server left by an interrupted earlier run
        shutil.rmtree(DATA, ignore_errors=True)
        DATA.mkdir(parents=True)
        log("starting the embedded PostgreSQL and tuning it (ALTER SYSTEM + restart)")
        base_url = start_postgres()
        asyncio.run(tune_postgres(base_url))
        stop_postgres()
        base_url = start_postgres()
        hold_postgres()
        pg = asyncio.run(show_settings(base_url))
        pg_pid = postmaster_pid()
        assert pg_pid is not None
        log(f"PostgreSQL {pg['server_version']} up (postmaster {pg_pid}): {pg}")

        cli("migrate")
        cli("resource", "add", RESOURCE_ID, "--owner", OWNER_ORG)
        token = cli("token", "--org", OWNER_ORG, "--scope", SCOPES).splitlines()[-1]
        rng = random.Random(20261127)
        people = make_contacts(opts.contacts, rng)
        bodies = write_bodies(people, rng)
        baseline = load_baseline()
        asyncio.run(fill_database(base_url, people, opts.prefill, baseline))

        serve = [venv_bin("correspondence"), "serve", "--no-worker", "--host", "127.0.0.1", "--port"]
        if opts.api_workers != 1:
            serve[3:3] = ["--workers", str(opts.api_workers)]
        app = start_server(
            "api",
            [*serve, str(APP_PORT)],
            app_env(),
            f"http://127.0.0.1:{APP_PORT}/health",
        )
        servers.append(app)
        base = start_server(
            "baseline",
            [sys.executable, str(BENCH / "baseline_app.py"), "--port", str(BASELINE_PORT)],
            child_env(BASELINE_DATABASE_URL=db_url(base_url, "baseline")),
            f"http://127.0.0.1:{BASELINE_PORT}/docs",
        )
        servers.append(base)
        patched_app: Server | None = None
        if SOURCE["patched"] is not None:
            patched_app = start_server(
                "api-patched",
                [*serve, str(PATCHED_PORT)],
                app_env(SOURCE["patched"]),
                f"http://127.0.0.1:{PATCHED_PORT}/health",
            )
            servers.append(patched_app)
        app_target = f"http://127.0.0.1:{APP_PORT}{PATH_INITIALIZE}"
        base_target = f"http://127.0.0.1:{BASELINE_PORT}/create"
        patched_target = f"http://127.0.0.1:{PATCHED_PORT}{PATH_INITIALIZE}"
        preflight(app_target, base_target, token, bodies)
        if patched_app is not None:
            preflight(patched_target, base_target, token, bodies)

        only = {k for k in opts.only.split(",") if k}
        quiet = Quiet(pg_pid, opts.max_other_cpu, opts.max_wait, opts.retries)
        results: list[Measurement] = []
        plan = schedule(opts.runs, opts.bulk_runs, only, patched_app is not None)
        defaults_app: Server | None = None
        for sc, run in plan:
            target, server = (base_target, base) if sc.baseline else (app_target, app)
            if sc.patched and patched_app is not None:
                target, server = patched_target, patched_app
            if sc.defaults:
                if defaults_app is None:
                    # The earlier windows left publish jobs nobody ran (their API had no worker): a
                    # worker starting now would spend the (d) windows on them. Drop them first.
                    asyncio.run(discard_pending_work(db_url(base_url, "correspondence")))
                    defaults_app = start_server(
                        "api-defaults",
                        [*serve[:2], "--host", "127.0.0.1", "--port", str(DEFAULTS_PORT)],
                        app_env(),
                        f"http://127.0.0.1:{DEFAULTS_PORT}/health",
                    )
                    servers.append(defaults_app)
                target = f"http://127.0.0.1:{DEFAULTS_PORT}{PATH_INITIALIZE}"
                server = defaults_app
            for attempt in range(1, opts.retries + 2):
                m = measure(
                    sc,
                    run,
                    target=target,
                    server=server,
                    quiet=quiet,
                    attempt=attempt,
                    db=db_url(base_url, "baseline" if sc.baseline else "correspondence"),
                    bodies=bodies[sc.recipients],
                    token=token,
                    warmup=opts.warmup,
                    duration=opts.duration,
                    py_spy=opts.py_spy,
                )
                if m.other_cpu <= opts.max_other_cpu or attempt > opts.retries:
                    break
                log(f"other processes used {m.other_cpu:.0f} % CPU during the window: measuring it again")
            results.append(m)
        info = machine()
        if opts.json_out is not None:
            raw = {"argv": argv, "api_workers": opts.api_workers, "machine": info, "postgres": pg}
            opts.json_out.write_text(json.dumps({**raw, "runs": [asdict(m) for m in results]}, indent=2))
        if not opts.no_report and not opts.py_spy:
            write_report(
                results,
                path=opts.report,
                argv=argv,
                started=started,
                info=info,
                pg=pg,
                bodies=bodies,
                opts=opts,
                people=people,
            )
            log(f"wrote {opts.report}")
        bad = [m for m in results if m.non2xx or m.socket_errors or not m.rows_consistent]
        if bad:
            raise SystemExit(f"{len(bad)} window(s) had errors or inconsistent rows; see the report")
    finally:
        for server in reversed(servers):
            stop_server(server)
        stop_postgres()


if __name__ == "__main__":
    main()
