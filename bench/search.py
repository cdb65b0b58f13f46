"""Recipients' side at 10 M rows: wrk against search and overview, as recipients.

Sets up its own embedded PostgreSQL under bench/out/search-data (tuned as bench/initialize.py does),
runs the migrations and fills it set-based (INSERT … SELECT FROM generate_series, on two connections
with wal_level=minimal, keys and indexes built after) with 10,000,000 correspondences over 100,000
person recipients, their status history and 2 notification orders each; VACUUM ANALYZE. Then starts
`correspondence serve --no-worker`, mints read tokens for --active (20,000) of the recipients, the
sessions of the windows, with the development issuer's key in the data dir, primes the token cache,
reads the overviews' rows once, and measures with wrk -t1 -c32 (3 s warm-up, 15 s measured, 3 runs):

  (a) search   GET /correspondence/api/v1/correspondence?resourceId=bench-search-N&role=Recipient&limit=100,
               a random recipient (resourceId and role are required; N is fixed per recipient)
  (b) overview GET /correspondence/api/v1/correspondence/{id}, one of that recipient's published ones
      (records a debounced Fetched status row: a write, as the service really does)
  (c) paced    the overviews of (b) below saturation: 64 connections, each pausing after an answer
               for a random time of mean 24 ms (bench/paced.lua), so the latency is measured at about
               the rate the target names rather than forced by the connection count

plus EXPLAIN (ANALYZE, BUFFERS) of the search statement the code builds. Appends (or replaces) the
"Search and overview at 10M rows" section of bench/RESULTS.md. Everything it starts is stopped when
it ends.

    .venv/bin/python bench/search.py [--runs 3] [--rows 10000000] [--recipients 100000] [--active 20000]
                                     [--load-only] [--reuse] [--compare REV] [--api-workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    OUT,
    PERSON_URN,
    PG_SETTINGS,
    ROOT,
    EmbeddedPostgres,
    Quiet,
    RssSampler,
    Server,
    box_busy,
    child_env,
    cpu_delta,
    cpu_snapshot,
    db_url,
    io_stalled,
    log,
    machine,
    national_ids,
    own_cpu,
    replace_section,
    run_cli,
    run_wrk,
    show_settings,
    start_server,
    stop_server,
    venv_bin,
)

DATA = OUT / "search-data"
PGDATA = DATA / "pgdata"
LOGS = OUT / "search-logs"
RESULTS = ROOT / "bench" / "RESULTS.md"
LUA = ROOT / "bench" / "get.lua"
PORT = 18090
API = "/correspondence/api/v1/correspondence"
SEARCH_RESOURCE = "bench-search-0"  # the resource of the plan shown and the preflight
SEARCH_PATH = f"{API}?resourceId={{resource}}&role=Recipient&limit=100"
READ_SCOPE = "altinn:correspondence.read"
OWNERS = ("991825827", "910753614", "313725138")
RESOURCES = 5
CONTENTS = 1000
VISIBLE = (2, 4, 6, 9)  # Published, Read, Confirmed, Archived: what the data holds that recipients see
SECTION_BEGIN = "<!-- search:begin (bench/search.py rewrites this section) -->"
SECTION_END = "<!-- search:end -->"
ANALYSIS_BEGIN = "<!-- search-analysis:begin (kept when bench/search.py rewrites the section) -->"
ANALYSIS_END = "<!-- search-analysis:end -->"


def app_env(src: Path = ROOT / "src") -> dict[str, str]:
    """The service's environment; `src` is the code it runs (this tree's, or an exported commit's)."""
    return child_env(
        CORRESPONDENCE_DATA_DIR=str(DATA),
        CORRESPONDENCE_ACCESS_LOG="false",
        CORRESPONDENCE_LOG_LEVEL="warning",
        PYTHONPATH=str(src),
    )


def export_rev(rev: str) -> Path:
    """`git archive REV src` under bench/out/search-compare: the code of the B side of an A/B run.
    It gets this tree's migrations (serve applies them at start): both sides run on one database."""
    target = OUT / "search-compare"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    shutil.copytree(ROOT / "migrations", target / "migrations")
    return target / "src"


def cli(*args: str) -> str:
    return run_cli(app_env(), *args)


# --- the set-based loader -------------------------------------------------------------------------


def load_sql(rows: int) -> list[tuple[str, str]]:
    """(label, statement) pairs. Recipients come from the table bench_recipients(n, urn)."""
    owner = "(ARRAY[" + ", ".join(f"'{o}'" for o in OWNERS) + f"])[(k % {RESOURCES}) % {len(OWNERS)} + 1]"
    return [
        (
            "resources",
            f"""INSERT INTO resources (resource_id, owner_org, title)
                SELECT 'bench-search-' || k, {owner}, 'Bench resource ' || k
                FROM generate_series(0, {RESOURCES - 1}) k""",
        ),
        (
            "correspondence_contents",
            f"""INSERT INTO correspondence_contents (id, language, message_title, message_summary,
                  message_body, reply_options, property_list, external_references, notification, created)
                SELECT md5('content' || k)::uuid, 'nb', 'Meldingstittel ' || k,
                  'Ett sammendrag for meldingen',
                  '# meldingsteksten. Som kan være plain text eller markdown ' || k,
                  '[{{"linkURL": "https://www.test.no", "linkText": "test"}}]', '{{}}', '[]', NULL,
                  now() - interval '400 days'
                FROM generate_series(0, {CONTENTS - 1}) k""",
        ),
        # One row per correspondence; the time fields follow its (random) current status:
        # 2 % ReadyForPublish with a publish time up to 30 days ahead (recipients must not see them),
        # 70 % Published, 15 % Read, 5 % Confirmed, 8 % Archived, published over the past year.
        (
            "correspondences",
            f"""INSERT INTO correspondences (id, content_id, resource_id, recipient, sender, service_owner_id,
                  senders_reference, requested_publish_time, due_date_time, published, is_confirmation_needed,
                  is_confidential, allow_forwarding, created, status, status_changed, read_at, confirmed_at)
                SELECT (lpad(to_hex((extract(epoch FROM y.created) * 1000)::bigint), 12, '0') || '7'
                        || substr(y.h, 1, 3) || '8' || substr(y.h, 4, 15))::uuid,
                  md5('content' || y.k)::uuid, 'bench-search-' || (y.k % {RESOURCES}), r.urn,
                  'urn:altinn:organization:identifier-no:' || y.owner, y.owner, 'ref-' || y.k,
                  y.rpt, y.rpt + interval '31 days', CASE WHEN y.st <> 1 THEN y.rpt END, y.st = 6,
                  false, true, y.created, y.st,
                  CASE y.st WHEN 1 THEN y.created WHEN 2 THEN y.rpt WHEN 4 THEN y.rpt + interval '2 hours'
                            WHEN 6 THEN y.rpt + interval '3 hours' ELSE y.rpt + interval '5 days' END,
                  CASE WHEN y.st IN (4, 6, 9) THEN y.rpt + interval '2 hours' END,
                  CASE WHEN y.st = 6 THEN y.rpt + interval '3 hours' END
                FROM (
                  SELECT x.*, {owner.replace("k %", "x.k %")} AS owner,
                    CASE WHEN x.st = 1 THEN now() + x.age * interval '30 days'
                         ELSE now() - x.age * interval '365 days' END AS rpt,
                    CASE WHEN x.st = 1 THEN now() - x.age * interval '1 day'
                         ELSE now() - x.age * interval '365 days' - interval '5 minutes' END AS created
                  FROM (
                    SELECT w.*, w.g % {CONTENTS} AS k, md5(w.g::text) AS h
                    FROM (
                      SELECT g, floor(random() * %(recipients)s)::int AS ri,
                        random() AS age,
                        (ARRAY[1, 2, 4, 6, 9])[
                          width_bucket(random(), ARRAY[0, 0.02, 0.72, 0.87, 0.92]::float8[])]
                          AS st
                      FROM generate_series(1, {rows}) g
                    ) w
                    -- Stored in correspondences_recipient_list's order (recipient, resource, publish
                    -- time descending; bench_recipients.n follows the URNs' order), sorted on these
                    -- narrow numbers: building that index is then one pass over presorted rows
                    -- instead of a 10 M-row text sort. Correctness does not depend on it.
                    ORDER BY w.ri, w.g % {RESOURCES}, w.st <> 1, CASE WHEN w.st = 1 THEN -w.age ELSE w.age END
                  ) x
                ) y
                JOIN bench_recipients r ON r.n = y.ri""",
        ),
        # The history the lifecycle leaves: Initialized, ReadyForPublish; Published; the recipient's
        # Read; Confirmed; Archived (and the Fetched before Read, in a table of its own below).
        (
            "correspondence_statuses",
            """INSERT INTO correspondence_statuses
                  (correspondence_id, status, status_text, status_changed, party)
                SELECT c.id, s.status, s.txt, s.at, s.party
                FROM correspondences c
                CROSS JOIN LATERAL (VALUES
                  (0::smallint, 'Initialized', c.created, NULL::text),
                  (1::smallint, 'ReadyForPublish', c.created, NULL),
                  (2::smallint, 'Published', c.published, NULL),
                  (4::smallint, 'Read', c.read_at, c.recipient),
                  (6::smallint, 'Confirmed', c.confirmed_at, c.recipient),
                  (9::smallint, 'Archived', CASE WHEN c.status = 9 THEN c.status_changed END, c.recipient)
                ) s(status, txt, at, party)
                WHERE s.at IS NOT NULL""",
        ),
        (
            "correspondence_fetches",
            """INSERT INTO correspondence_fetches (correspondence_id, party, fetched)
                SELECT c.id, c.recipient, c.read_at - interval '1 minute'
                FROM correspondences c WHERE c.read_at IS NOT NULL""",
        ),
        (
            "notification_orders",
            """INSERT INTO notification_orders (id, correspondence_id, is_reminder, template, channel,
                  requested_send_time, recipient, email_address, mobile_number, status, processing_status,
                  created)
                SELECT md5(c.id::text || o.tag)::uuid, c.id, o.rem, 0, 3,
                  c.requested_publish_time + CASE WHEN o.rem THEN interval '7 days' ELSE interval '0' END,
                  c.recipient, 'person@example.no', '+4790000000', 0,
                  CASE WHEN c.status = 1 THEN 'Registered' ELSE 'Completed' END, c.created
                FROM correspondences c CROSS JOIN (VALUES (false, 'm'), (true, 'r')) o(rem, tag)""",
        ),
    ]


LOADED_TABLES = (
    "correspondences",
    "correspondence_statuses",
    "correspondence_fetches",
    "notification_orders",
)
# The load runs with wal_level=minimal (a restart before and after it): a table truncated in the
# transaction that fills it, and an index built after, are written out at commit instead of through
# the WAL. The measured windows run with PostgreSQL's default, replica.
LOAD_SETTINGS = {"wal_level": "minimal", "max_wal_senders": "0"}
# shared_buffers: this VM's kernel pages out page cache that is not used for a while (DAMON
# "pageout"), so pages outside PostgreSQL's shared memory are read from disk again; the measured
# sessions' working set (~4 GB at 10 M rows) is kept in shared buffers instead.
RUN_SETTINGS = {"wal_level": "replica", "max_wal_senders": "10", "shared_buffers": "6GB"}
LOAD_CONNECTIONS = 2  # one per core


@dataclass
class Load:
    seconds: float
    steps: dict[str, float]  # label -> seconds (steps on different connections overlap)
    rows: dict[str, int]  # table -> rows
    correspondences_per_s: float
    rows_per_s: float
    status_mix: dict[int, int]


async def fill(url: str, people: list[str], rows: int) -> Load:
    """Fills the tables on LOAD_CONNECTIONS connections: each step waits for the ones it needs, then
    for a free connection. Primary keys and secondary indexes are dropped first and built after the
    rows (one sorted build beats 10 M random inserts), from their own definitions."""
    steps: dict[str, float] = {}
    t_all = time.monotonic()
    setup = await asyncpg.connect(url, command_timeout=7200)
    try:
        await setup.execute(
            "DROP TABLE IF EXISTS bench_recipients; "
            "CREATE UNLOGGED TABLE bench_recipients (n int PRIMARY KEY, urn text NOT NULL)"
        )
        await setup.copy_records_to_table(
            "bench_recipients",
            records=[(i, PERSON_URN + p) for i, p in enumerate(sorted(people))],
            columns=["n", "urn"],
        )
        await setup.execute("ANALYZE bench_recipients")
        keys = await setup.fetch(
            """SELECT k.conrelid::regclass::text AS tbl, k.conname,
                      pg_get_constraintdef(k.oid) AS def
               FROM pg_constraint k
               WHERE k.conrelid = ANY($1::regclass[]) AND k.contype = 'p'""",
            list(LOADED_TABLES),
        )
        indexes = await setup.fetch(
            """SELECT i.tablename AS tbl, i.indexname, i.indexdef FROM pg_indexes i
               WHERE i.schemaname = 'public' AND i.tablename = ANY($1::text[])
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname)""",
            list(LOADED_TABLES),
        )
        for ix in indexes:
            await setup.execute(f'DROP INDEX "{ix["indexname"]}"')
        for k in keys:
            await setup.execute(f'ALTER TABLE {k["tbl"]} DROP CONSTRAINT "{k["conname"]}"')
        sql = dict(load_sql(rows))
        for label in ("resources", "correspondence_contents"):
            await setup.execute(sql.pop(label))
    finally:
        await setup.close()

    pool = await asyncpg.create_pool(
        url,
        min_size=LOAD_CONNECTIONS,
        max_size=LOAD_CONNECTIONS,
        command_timeout=7200,
        server_settings={
            # in memory: a 10 M-row index sort spilled to disk took 2-4 times as long
            "maintenance_work_mem": "2GB",
            "work_mem": "1GB",
            "synchronous_commit": "off",
            "max_parallel_maintenance_workers": "0",  # the other connection has the other core
        },
    )
    done: dict[str, asyncio.Event] = {}

    async def step(label: str, needs: list[str], statements: list[str], *, transaction: bool) -> None:
        for n in needs:
            await done[n].wait()
        async with pool.acquire() as conn:
            t0 = time.monotonic()
            if transaction:
                async with conn.transaction():
                    for s in statements:
                        await conn.execute(s)
            else:
                for s in statements:
                    await conn.execute(s)
            steps[label] = time.monotonic() - t0
        log(f"  {label}: {steps[label]:.1f} s")
        done[label].set()

    jobs: list[tuple[str, list[str], list[str], bool]] = []
    for table in LOADED_TABLES:
        insert = sql[table].replace("%(recipients)s", str(len(people)))
        needs = [] if table == "correspondences" else ["correspondences"]
        jobs.append((table, needs, [f"TRUNCATE {table}", insert], True))
        # VACUUM first: it sets the hint bits and the visibility map once, so the index builds
        # scan a table that is already all-visible.
        jobs.append((f"VACUUM ANALYZE {table}", [table], [f"VACUUM (ANALYZE) {table}"], False))
    builds: list[tuple[str, str, str]] = [
        (k["tbl"], f"{k['conname']}", f'ALTER TABLE {k["tbl"]} ADD CONSTRAINT "{k["conname"]}" {k["def"]}')
        for k in keys
    ] + [(ix["tbl"], ix["indexname"], ix["indexdef"]) for ix in indexes]
    for table, name, statement in builds:
        jobs.append((f"index {name}", [f"VACUUM ANALYZE {table}"], [statement], False))
    for label, *_ in jobs:
        done[label] = asyncio.Event()
    try:
        await asyncio.gather(*(step(label, n, s, transaction=t) for label, n, s, t in jobs))
    finally:
        await pool.close()
    seconds = time.monotonic() - t_all

    conn = await asyncpg.connect(url, command_timeout=3600)
    try:
        await conn.execute("DROP TABLE bench_recipients")
        await conn.execute("CHECKPOINT")
        counts = {
            t: int(await conn.fetchval(f"SELECT count(*) FROM {t}"))
            for t in ("correspondence_contents", *LOADED_TABLES)
        }
        mix = {
            int(r["status"]): int(r["n"])
            for r in await conn.fetch(
                "SELECT status, count(*) AS n FROM correspondences GROUP BY 1 ORDER BY 1"
            )
        }
    finally:
        await conn.close()
    return Load(
        seconds=seconds,
        steps=steps,
        rows=counts,
        correspondences_per_s=counts["correspondences"] / seconds,
        rows_per_s=sum(counts.values()) / seconds,
        status_mix=mix,
    )


# --- tokens and request lists ---------------------------------------------------------------------


def mint_tokens(people: list[str]) -> dict[str, str]:
    """A read token per person, from the development issuer whose key `serve` reads from the data dir."""
    from correspondence.auth.tokens import DevIssuer
    from correspondence.config import DEV_ISSUER

    issuer = DevIssuer(DEV_ISSUER, DATA, 24 * 3600)
    return {p: issuer.mint(scope=READ_SCOPE, pid=p, lifetime_seconds=6 * 3600) for p in people}


async def visible_ids(url: str, people: list[str], per_recipient: int) -> dict[str, list[str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            f"""SELECT recipient, (array_agg(id ORDER BY md5(id::text)))[1:{per_recipient}] AS ids
                FROM correspondences
                WHERE status = ANY($1::smallint[]) AND recipient = ANY($2::text[]) GROUP BY recipient""",
            list(VISIBLE),
            [PERSON_URN + p for p in people],
        )
    finally:
        await conn.close()
    return {r["recipient"].removeprefix(PERSON_URN): [str(i) for i in r["ids"]] for r in rows}


async def warm(url: str, ids: dict[str, list[str]]) -> float:
    """Reads what the overviews of the measured sessions read (row, content, history, orders, by the
    same indexes) once, so the windows find it in memory as a running service would, not on disk
    right after the restart that follows the load. Returns the seconds it took."""
    t0 = time.monotonic()
    conn = await asyncpg.connect(url, command_timeout=1800)
    try:
        await conn.fetchval(
            """SELECT sum(length(c.sender) + length(ct.message_body) + h.n + f.n + o.n)
               FROM unnest($1::uuid[]) u(id)
               JOIN correspondences c ON c.id = u.id
               JOIN correspondence_contents ct ON ct.id = c.content_id
               CROSS JOIN LATERAL (SELECT sum(length(s.status_text)) AS n FROM correspondence_statuses s
                                   WHERE s.correspondence_id = c.id) h
               CROSS JOIN LATERAL (SELECT count(f.party) AS n FROM correspondence_fetches f
                                   WHERE f.correspondence_id = c.id) f
               CROSS JOIN LATERAL (SELECT sum(length(n.processing_status)) AS n FROM notification_orders n
                                   WHERE n.correspondence_id = c.id) o""",
            [i for cids in ids.values() for i in cids],
        )
    finally:
        await conn.close()
    return time.monotonic() - t0


def write_requests(tokens: dict[str, str], ids: dict[str, list[str]]) -> dict[str, Path]:
    search = OUT / "search-requests.txt"
    search.write_text(
        "".join(
            f"{SEARCH_PATH.format(resource=f'bench-search-{n % RESOURCES}')} {t}\n"
            for n, t in enumerate(tokens.values())
        ),
        encoding="utf-8",
    )
    overview = OUT / "overview-requests.txt"
    overview.write_text(
        "".join(f"{API}/{cid} {tokens[p]}\n" for p, cids in ids.items() if p in tokens for cid in cids),
        encoding="utf-8",
    )
    return {"search": search, "overview": overview}


# --- the search statement and its plan ------------------------------------------------------------


class _Recorder:
    """Stands in for the pool: records the statement the search use case sends for the page (and
    answers it with no rows); the registry lookups go to the database."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        if "FROM correspondences" not in sql:
            return list(await self.conn.fetch(sql, *args))
        self.calls.append((sql, args))
        return []

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self.conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        if "FROM correspondences" not in sql:
            return await self.conn.fetchval(sql, *args)
        self.calls.append((sql, args))
        return 0


async def search_statement(url: str, pid: str) -> tuple[str, tuple[Any, ...]]:
    """The exact SQL and arguments src/ builds for SEARCH_PATH (SEARCH_RESOURCE) by this person."""
    from correspondence.auth.caller import Caller
    from correspondence.correspondence.use_cases.search import SearchQuery, search_correspondences
    from correspondence.registry.cache import ResourceCache

    caller = Caller(
        issuer="bench",
        kind="altinn",
        scopes=frozenset({READ_SCOPE}),
        org=None,
        pid=pid,
        expires=time.time() + 60,
    )
    conn = await asyncpg.connect(url)
    try:
        recorder = _Recorder(conn)
        await search_correspondences(
            pool=recorder,
            resources=ResourceCache(),
            caller=caller,
            query=SearchQuery(role="Recipient", resource_id=SEARCH_RESOURCE, limit=100),
        )
    finally:
        await conn.close()
    return recorder.calls[0]


@dataclass
class Plan:
    sql: str
    custom: str
    generic: str
    index_only: bool
    heap_fetches: list[int]
    execution_ms: float


async def explain(url: str, pid: str) -> Plan:
    sql, args = await search_statement(url, pid)
    conn = await asyncpg.connect(url)
    try:
        custom_rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
        custom = "\n".join(r[0] for r in custom_rows)
        literals = ", ".join(
            "'" + str(a).replace("'", "''") + "'" if isinstance(a, str) else str(a) for a in args
        )
        await conn.execute(f"PREPARE bench_search AS {sql}")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        generic_rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_search({literals})")
        generic = "\n".join(r[0] for r in generic_rows)
    finally:
        await conn.close()
    fetches = [int(line.split("Heap Fetches:")[1]) for line in custom.splitlines() if "Heap Fetches:" in line]
    execution = next(
        (float(line.split(":")[1].split()[0]) for line in custom.splitlines() if "Execution Time" in line),
        0.0,
    )
    return Plan(sql, custom, generic, "Index Only Scan" in custom, fetches, execution)


# --- checks before measuring ----------------------------------------------------------------------


async def preflight(base: str, url: str, tokens: dict[str, str], ids: dict[str, list[str]]) -> None:
    """A recipient sees exactly their visible correspondences (none unpublished), newest first; the
    overview answers; another recipient is refused."""
    people = list(tokens)
    conn = await asyncpg.connect(url)
    try:
        # someone with unpublished ones, to check they are left out
        row = await conn.fetchrow(
            """SELECT recipient FROM correspondences WHERE status = 1 AND recipient = ANY($1::text[])
               ORDER BY md5(id::text) LIMIT 1""",
            [PERSON_URN + p for p in people],
        )
        assert row is not None
        pid = row["recipient"].removeprefix(PERSON_URN)
        visible = await conn.fetch(
            """SELECT id FROM correspondences WHERE recipient = $1 AND status = ANY($2::smallint[])
                 AND resource_id = $3
               ORDER BY requested_publish_time DESC, id DESC""",
            PERSON_URN + pid,
            list(VISIBLE),
            SEARCH_RESOURCE,
        )
        hidden = await conn.fetchval(
            "SELECT count(*) FROM correspondences WHERE recipient = $1 AND status = 1 AND resource_id = $2",
            PERSON_URN + pid,
            SEARCH_RESOURCE,
        )
    finally:
        await conn.close()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        r = await client.get(
            SEARCH_PATH.format(resource=SEARCH_RESOURCE), headers={"Authorization": f"Bearer {tokens[pid]}"}
        )
        if r.status_code != 200:
            raise SystemExit(f"preflight search: {r.status_code} {r.text[:2000]}")
        body = r.json()
        expected = [str(v["id"]) for v in visible][:100]
        if body["ids"] != expected or body["pagination"]["totalItems"] != len(visible):
            raise SystemExit(
                f"preflight search: unexpected answer {body['pagination']} for {len(visible)} visible"
            )
        log(f"preflight search: 200, {len(visible)} visible (the {hidden} unpublished left out), order ok")
        cid = ids[pid][0]
        r = await client.get(f"{API}/{cid}", headers={"Authorization": f"Bearer {tokens[pid]}"})
        if r.status_code != 200 or r.json()["correspondenceId"] != cid:
            raise SystemExit(f"preflight overview: {r.status_code} {r.text[:2000]}")
        log(f"preflight overview: 200, status {r.json()['status']}")
        other = next(p for p in people if p != pid)
        r = await client.get(f"{API}/{cid}", headers={"Authorization": f"Bearer {tokens[other]}"})
        if r.status_code not in (403, 404):
            raise SystemExit(
                f"preflight: another recipient got {r.status_code} for someone else's correspondence"
            )
        log(f"preflight: another recipient is refused ({r.status_code})")


def prime(base: str, requests: Path, count: int, connections: int) -> float:
    """Every line of `requests` in turn, at least once, before anything is measured: each token is
    verified (RS256) and cached by the service once, as in a recipient's session."""
    seconds = max(5, count // 200)  # ~300 first uses/s (RS256) on a quiet machine
    t0 = time.monotonic()
    result = run_wrk(
        base, LUA, {"BENCH_REQUESTS": str(requests), "BENCH_ORDER": "cycle"}, connections, seconds
    )
    if result["non2xx"] or result["requests"] < count:
        raise SystemExit(
            f"priming: {result['requests']} requests for {count} tokens, {result['non2xx']} non-2xx"
        )
    return time.monotonic() - t0


# --- one measured window --------------------------------------------------------------------------


@dataclass
class Measurement:
    scenario: str
    label: str
    variant: str  # "this tree", or the commit of the other side of an A/B run
    run: int
    attempt: int
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int
    server_rss_mb: float
    server_cpu: float
    pg_cpu: float
    wrk_cpu: float
    box_cpu: float
    other_cpu: float
    other_before: float
    io_stall: float  # % of the window in which some task waited for I/O
    wal_mb: float  # WAL PostgreSQL wrote in the window
    wal_fpi: int  # of which full-page images (a page's first change after a checkpoint)
    fetched_rows: int
    inbox_index_scans: int
    extra: dict[str, Any] = field(default_factory=dict)


SCENARIOS = {
    "search": "(a) search, first page, limit=100",
    "overview": "(b) overview of a published correspondence",
    "paced": "(c) overview, paced (each connection pauses between its requests)",
}
# What each scenario requests: the paced one asks for the same overviews as (b).
REQUESTS = {"search": "search", "overview": "overview", "paced": "overview"}
PACED_LUA = ROOT / "bench" / "paced.lua"

# Fetched rows written: their ids come from the status history's sequence, and the windows write
# no other history rows, so the sequence's advance counts them (a count(*) read the whole table
# from disk right before a window).
COUNTERS = """SELECT (SELECT last_value FROM correspondence_statuses_id_seq) AS fetched,
  (SELECT wal_bytes FROM pg_stat_wal) AS wal_bytes, (SELECT wal_fpi FROM pg_stat_wal) AS wal_fpi,
  (SELECT idx_scan FROM pg_stat_user_indexes
   WHERE indexrelname = 'correspondences_recipient_inbox') AS inbox"""


async def counters(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(COUNTERS)
        assert row is not None
        return {k: int(v or 0) for k, v in dict(row).items()}
    finally:
        await conn.close()


def measure(
    key: str,
    run: int,
    attempt: int,
    *,
    variant: str,
    target: str,
    requests: Path,
    server: Server,
    quiet: Quiet,
    url: str,
    connections: int,
    warmup: int,
    duration: int,
    py_spy: Path | None = None,
    pause_ms: int = 0,
) -> Measurement:
    """`pause_ms`: each connection waits a random time of that mean after an answer before its next
    request (bench/paced.lua): a load below saturation, where (a) and (b) keep every connection busy."""
    env = {"BENCH_REQUESTS": str(requests)}
    lua = LUA
    if pause_ms:
        env |= {"BENCH_SCRIPT": str(LUA), "BENCH_DELAY_MS": str(pause_ms), "BENCH_DELAY_RANDOM": "1"}
        lua = PACED_LUA
    other_before = quiet.wait()
    log(f"run {run} {SCENARIOS[key]} [{variant}]: warm-up {warmup} s")
    run_wrk(target, lua, env, connections, warmup)
    time.sleep(1.0)
    before = asyncio.run(counters(url))
    time.sleep(0.6)  # pg_stat counters are flushed at most once a second
    pg_pid = quiet.pg_pid
    server0, pg0, box0, ours0 = (
        cpu_snapshot(server.pid),
        cpu_snapshot(pg_pid, reaped=True),
        box_busy(),
        own_cpu(pg_pid),
    )
    io0 = io_stalled()
    wrk0 = _children_cpu()
    sampler = RssSampler(server.pid)
    sampler.start()
    spy: subprocess.Popen[bytes] | None = None
    if py_spy is not None:
        record = ["record", "--rate", "100", "--duration", str(duration), "--nonblocking", "--format", "raw"]
        spy = subprocess.Popen(
            [venv_bin("py-spy"), *record, "--output", str(py_spy), "--pid", str(server.pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    log(f"run {run} {SCENARIOS[key]} [{variant}]: measuring {duration} s")
    wall0 = time.monotonic()
    result = run_wrk(target, lua, env, connections, duration)
    wall = time.monotonic() - wall0
    server1, pg1, box1, ours1 = (
        cpu_snapshot(server.pid),
        cpu_snapshot(pg_pid, reaped=True),
        box_busy(),
        own_cpu(pg_pid),
    )
    io1 = io_stalled()
    wrk1 = _children_cpu()
    peak = sampler.stop()
    if spy is not None:
        spy.wait(60)
    time.sleep(1.6)
    after = asyncio.run(counters(url))
    seconds = result["duration_us"] / 1e6
    m = Measurement(
        scenario=key,
        label=SCENARIOS[key],
        variant=variant,
        run=run,
        attempt=attempt,
        connections=connections,
        requests=result["requests"],
        seconds=seconds,
        rps=result["requests"] / seconds,
        p50_ms=result["p50_us"] / 1000,
        p90_ms=result["p90_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        p999_ms=result["p999_us"] / 1000,
        max_ms=result["max_us"] / 1000,
        non2xx=result["non2xx"],
        socket_errors=result["connect"] + result["read"] + result["write"] + result["timeout"],
        server_rss_mb=peak / 2**20,
        server_cpu=100 * cpu_delta(server0, server1) / wall,
        pg_cpu=100 * cpu_delta(pg0, pg1, reaped=True) / wall,
        wrk_cpu=100 * (wrk1 - wrk0) / wall,
        box_cpu=100 * (box1 - box0) / wall,
        other_cpu=100 * ((box1 - box0) - cpu_delta(ours0, ours1, reaped=True)) / wall,
        other_before=other_before,
        io_stall=100 * (io1 - io0) / wall,
        wal_mb=(after["wal_bytes"] - before["wal_bytes"]) / 2**20,
        wal_fpi=after["wal_fpi"] - before["wal_fpi"],
        fetched_rows=after["fetched"] - before["fetched"],
        inbox_index_scans=after["inbox"] - before["inbox"],
    )
    log(
        f"run {run} {m.label} [{variant}]: {m.rps:,.0f} req/s, p50 {m.p50_ms:.1f} ms, p99 {m.p99_ms:.1f} ms, "
        f"non-2xx {m.non2xx}, socket errors {m.socket_errors}, server {m.server_cpu:.0f} %, "
        f"PostgreSQL {m.pg_cpu:.0f} %, wrk {m.wrk_cpu:.0f} %, other {m.other_cpu:.0f} %, "
        f"I/O stall {m.io_stall:.0f} %, WAL {m.wal_mb:.0f} MB ({m.wal_fpi:,} full pages), "
        f"RSS {m.server_rss_mb:.0f} MB, Fetched rows +{m.fetched_rows:,}, "
        f"inbox index scans +{m.inbox_index_scans:,}"
    )
    return m


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def summarize_profile(raw: Path, top: int = 25) -> str:
    """py-spy's raw (collapsed) stacks: the top functions by own and by inclusive samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f]
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    out = [f"py-spy samples: {total}", "", "own (leaf) samples:"]
    out += [f"  {100 * n / total:5.1f} %  {f}" for f, n in own.most_common(top)] if total else []
    out += ["", "inclusive samples:"]
    out += [f"  {100 * n / total:5.1f} %  {f}" for f, n in inclusive.most_common(top * 2)] if total else []
    return "\n".join(out) + "\n"


# --- report ---------------------------------------------------------------------------------------


def _order(m: Measurement) -> tuple[int, int, bool]:
    return (list(SCENARIOS).index(m.scenario), m.run, m.variant != "this tree")


def _verdict(values: list[bool]) -> str:
    if values and all(values):
        return "**met**" + (f" (all {len(values)} runs)" if len(values) > 1 else "")
    if any(values):
        return f"**met in {sum(values)} of {len(values)} runs**"
    return "**not met**"


def section(
    ms: list[Measurement],
    *,
    argv: list[str],
    started: datetime,
    info: dict[str, str],
    pg: dict[str, str],
    load: Load,
    plan: Plan,
    after: Plan,
    opts: argparse.Namespace,
    previous_analysis: str,
) -> str:
    lines: list[str] = []
    w = lines.append
    names = {1: "ReadyForPublish", 2: "Published", 4: "Read", 6: "Confirmed", 9: "Archived"}
    total = sum(load.status_mix.values())
    w(SECTION_BEGIN)
    w("## Search and overview at 10M rows")
    w("")
    w(
        "Written by `bench/search.py` (`make bench-search`); the part marked *analysis* is kept "
        "across re-runs."
    )
    w("")
    w("```bash")
    w(shlex.join(argv))
    w("```")
    w("")
    w(f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}. Code measured: {info['source']}.")
    w(
        f"- Machine: {info['nproc']} vCPU ({info['cpu']}), {info['ram']} RAM, Linux {info['kernel']}; "
        "wrk, API and PostgreSQL share the cores. Python "
        f"{info['python']}; {info['packages']}; {info['wrk']}."
    )
    w(
        f"- PostgreSQL {pg['server_version']} embedded (pgserver), its own data dir "
        "`bench/out/search-data/pgdata`, "
        "Unix socket, tuned as for Initialize except shared_buffers (6GB: this VM pages out page cache "
        "it sees unused, DAMON, so the sessions' ~4 GB working set is kept in PostgreSQL's memory): "
        + ", ".join(f"`{k}={pg[k]}`" for k in PG_SETTINGS)
        + f"; `fsync={pg['fsync']}`, `synchronous_commit={pg['synchronous_commit']}`."
    )
    w(
        "- API: `correspondence serve --no-worker` on 127.0.0.1, "
        + ("one uvicorn process" if opts.api_workers == 1 else f"`--workers {opts.api_workers}` processes")
        + ", `CORRESPONDENCE_ACCESS_LOG=false`, default pool (5) per process."
    )
    w(
        f"- Data: {load.rows['correspondences']:,} correspondences over {opts.recipients:,} persons "
        "(valid national "
        "identity numbers, `urn:altinn:person:identifier-no:…`, uniformly spread: about "
        f"{load.rows['correspondences'] // opts.recipients} each), {RESOURCES} resources of "
        f"{len(OWNERS)} owners, "
        f"{load.rows['correspondence_contents']:,} content rows; requested publish time uniform over "
        "the past "
        "year; current status "
        + ", ".join(f"{names.get(s, s)} {100 * n / total:.0f} %" for s, n in load.status_mix.items())
        + " (the ReadyForPublish ones scheduled up to 30 days ahead, which recipients must not see); "
        f"{load.rows['correspondence_statuses']:,} status rows (Initialized, ReadyForPublish, Published, and "
        f"Read/Confirmed/Archived as the status implies) and {load.rows['correspondence_fetches']:,} Fetched "
        f"rows (one before each Read), {load.rows['notification_orders']:,} "
        "notification orders (2 each). No jobs rows."
    )
    w(
        "- Load: set-based, `INSERT … SELECT FROM generate_series` after `correspondence migrate`, on two "
        "connections with `wal_level=minimal` (each table truncated and filled in one transaction); primary "
        "keys and secondary indexes dropped first and built after from their own definitions "
        "(`maintenance_work_mem=2GB`), `VACUUM ANALYZE` per table; steps on the two connections overlap: "
        f"**{load.seconds:.0f} s** in all, **{load.correspondences_per_s:,.0f} correspondences/s**, "
        f"{load.rows_per_s:,.0f} rows/s over the {len(LOADED_TABLES) + 1} tables ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in load.steps.items())
        + ")."
    )
    w(
        f"- Requests: `wrk -t1 -c{opts.connections} -d{opts.warmup}s` warm-up, then "
        f"`-d{opts.duration}s --timeout "
        "10s --latency -s bench/get.lua`; each request is a random line of a list: (a) the path "
        f"`{SEARCH_PATH.format(resource='bench-search-N')}` (N fixed per recipient) "
        f"with one of {opts.active:,} recipients' read tokens (the sessions: a random sample of the "
        f"{opts.recipients:,}; RS256, development issuer); "
        f"(b) `{API}/{{id}}` of one of {opts.per_recipient} published correspondences of each recipient, "
        "with that recipient's token. (b) is not read-only: a recipient's overview appends a `Fetched` "
        "row (debounced: not when the same party fetched it in the last 15 s), as the service "
        "really does; the *Fetched rows* column counts them. Before the first window every token is used "
        "once (a search each), so the service's token cache holds them all, as within a recipient's "
        "session: a first use adds an RS256 verification. "
        f"(c) asks for the same overviews as (b), but below saturation: {opts.paced_connections} "
        f"connections, each pausing after an answer for a random time (exponential, mean "
        f"{opts.paced_pause} ms: independent users' think times; bench/paced.lua) before its next "
        "request. (a) and (b) keep every connection busy, so their latency is the connections over the "
        "throughput (Little's law) whatever the service does; (c) shows the latency at about the rate "
        "the target names (the rate it reached is in the table). wrk measures from each request's "
        "send, so a stall delays the requests behind it without counting that delay (coordinated "
        "omission): (c)'s tail is a lower bound."
    )
    w(
        "- CPU summed per process tree over the window (100 % = one core). *Other* = the machine's busy "
        "time minus everything this script runs (other engineers' tests and benchmarks share the machine); "
        f"each window waits up to {opts.max_wait:.0f} s for others to use ≤ {opts.max_other_cpu:.0f} % and "
        f"is measured again (up to {opts.retries} times) when they used more during it. *I/O stall* = the "
        "share of the window in which some task of the machine waited for the disk (`/proc/pressure/io`, "
        "*some*): a WAL flush that stalls holds every request that waits for its commit. *WAL* = what "
        "PostgreSQL wrote to its log in the window (`pg_stat_wal`), and how many of those records were full "
        "page images (the first change of a page after a checkpoint is logged whole)."
    )
    w("")
    w("### Results")
    w("")
    w(
        "| Scenario | Code | Run | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors | server CPU % "
        "| PostgreSQL CPU % | wrk CPU % | other CPU % | I/O stall % | WAL MB (full pages) "
        "| server peak RSS MB | Fetched rows written |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for m in sorted(ms, key=_order):
        w(
            f"| {m.label}, c{m.connections} | {m.variant} | {m.run} | {m.rps:,.0f} | {m.p50_ms:.1f} | "
            f"{m.p99_ms:.1f} | "
            f"{m.max_ms:.0f} | {m.non2xx} | {m.socket_errors} | {m.server_cpu:.0f} | {m.pg_cpu:.0f} | "
            f"{m.wrk_cpu:.0f} | {m.other_cpu:.0f}{'' if m.attempt == 1 else f' (attempt {m.attempt})'} | "
            f"{m.io_stall:.0f} | {m.wal_mb:.0f} ({m.wal_fpi:,}) | {m.server_rss_mb:.0f} | "
            f"{m.fetched_rows:,} |"
        )
    w("")
    w("CPU per request (µs): " + "; ".join(
        f"{m.label.split(',')[0]} [{m.variant}] run {m.run}: server {m.server_cpu * 1e4 / m.rps:,.0f}, "
        f"PostgreSQL {m.pg_cpu * 1e4 / m.rps:,.0f}"
        for m in sorted(ms, key=_order)
        if m.rps
    ) + ".")  # fmt: skip
    w("")
    ours = [m for m in ms if m.variant == "this tree"]
    rows_m = f"{load.rows['correspondences'] / 1e6:.0f} M rows"
    w("### Target")
    w("")
    w("| Target | Measured (every window of this tree's code) | Verdict |")
    w("|---|---|---|")
    for key, what in (("search", "search pages"), ("overview", "overviews"), ("paced", "overviews")):
        windows = [m for m in ours if m.scenario == key]
        if not windows:
            continue
        load_of = (
            f"paced: {opts.paced_connections} connections, random pauses of mean {opts.paced_pause} ms"
            if key == "paced"
            else f"c{opts.connections}, saturating"
        )
        w(
            f"| ≥ 2,000 {what}/s with p99 ≤ 20 ms at {rows_m} ({load_of}, 2 cores, wrk included) | "
            + " · ".join(f"{m.rps:,.0f}/s, p99 {m.p99_ms:.1f} ms" for m in windows)
            + f" | {_verdict([m.rps >= 2000 and m.p99_ms <= 20 for m in windows])} |"
        )
    w(
        "| server RSS ≤ 150 MB under load | "
        + " · ".join(f"{m.server_rss_mb:.0f} MB" for m in ours)
        + f" | {_verdict([m.server_rss_mb <= 150 for m in ours])} |"
    )
    w(
        "| no non-2xx responses | "
        + " · ".join(f"{m.label.split(',')[0]}: {m.non2xx}" for m in ms)
        + f" | {_verdict([m.non2xx == 0 and m.socket_errors == 0 for m in ms])} |"
    )
    w("")
    w("### Plan of the search statement")
    w("")
    w(
        "The statement src/ builds for `role=Recipient&limit=100` (captured from "
        "`search_correspondences`, not retyped), for a recipient with unpublished correspondences, "
        "`EXPLAIN (ANALYZE, BUFFERS)`: "
        f"**{'index-only scan' if plan.index_only else 'NOT an index-only scan'}**"
        + (f", heap fetches {', '.join(map(str, plan.heap_fetches))}" if plan.heap_fetches else "")
        + f", execution {plan.execution_ms:.2f} ms."
    )
    w("")
    w("```sql")
    w(plan.sql)
    w("```")
    w("")
    w("```")
    w(plan.custom)
    w("```")
    w("")
    fetched = sum(m.fetched_rows for m in ms)
    w(
        f"The same after all windows ({fetched:,} Fetched rows written by the overviews in between): "
        f"{'index-only scan' if after.index_only else 'NOT an index-only scan'}, heap fetches "
        f"{', '.join(map(str, after.heap_fetches)) or '0'}, execution {after.execution_ms:.2f} ms."
    )
    w("")
    w("Generic plan (`plan_cache_mode = force_generic_plan`, as asyncpg's prepared statement may get):")
    w("")
    w("```")
    w(plan.generic)
    w("```")
    w("")
    w("### What limits it")
    w("")
    w(ANALYSIS_BEGIN)
    w(previous_analysis or "_(analysis to be written after looking at the numbers)_")
    w(ANALYSIS_END)
    w(SECTION_END)
    return "\n".join(lines) + "\n"


def write_section(text_for: Any) -> None:
    """Re-read RESULTS.md now (others edit it too) and replace our section, or append it."""
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    previous = ""
    if ANALYSIS_BEGIN in current and ANALYSIS_END in current:
        previous = current.split(ANALYSIS_BEGIN, 1)[1].split(ANALYSIS_END, 1)[0].strip("\n")
    replace_section(RESULTS, SECTION_BEGIN, SECTION_END, text_for(previous))


# --- main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="correspondences to load")
    parser.add_argument("--recipients", type=int, default=100_000, help="persons they are spread over")
    parser.add_argument(
        "--active", type=int, default=20_000, help="recipients with a session (token) in the windows"
    )
    parser.add_argument("--per-recipient", type=int, default=3, help="overview ids per recipient")
    parser.add_argument("--runs", type=int, default=3, help="how many times to run both scenarios")
    parser.add_argument("--duration", type=int, default=15, help="measured seconds per window")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per window")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", default="", help="comma-separated: search,overview,paced (default all)")
    parser.add_argument("--paced-connections", type=int, default=64, help="connections of the paced overview")
    parser.add_argument(
        "--paced-pause", type=int, default=24, help="ms each paced connection waits after an answer"
    )
    parser.add_argument("--reuse", action="store_true", help="keep the loaded database of an earlier run")
    parser.add_argument(
        "--load-only",
        action="store_true",
        help="load (or reuse) the database and stop (then measure with --reuse)",
    )
    parser.add_argument("--py-spy", action="store_true", help="profile the server in each window")
    parser.add_argument("--no-report", action="store_true", help="leave bench/RESULTS.md alone")
    parser.add_argument("--max-other-cpu", type=float, default=15, help="CPU %% others may use in a window")
    parser.add_argument("--max-wait", type=float, default=600, help="seconds to wait for a quiet machine")
    parser.add_argument("--retries", type=int, default=2, help="re-measurements of a disturbed window")
    parser.add_argument("--api-workers", type=int, default=1, help="API processes: `serve --workers N`")
    parser.add_argument(
        "--compare", default="", help="a commit to measure side by side (A/B, windows in turn) with this tree"
    )
    opts = parser.parse_args()
    argv = [".venv/bin/python", "bench/search.py", *sys.argv[1:]]
    started = datetime.now(UTC)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get update && apt-get install -y wrk")

    # SIGTERM (and SIGINT, which a background job ignores) end the run through `finally`: nothing left running
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    pg_server = EmbeddedPostgres(PGDATA)
    servers: list[Server] = []
    try:
        pg_server.stop()  # one left by an interrupted earlier run
        loaded = OUT / "search-load.json"
        reuse = opts.reuse and loaded.exists() and PGDATA.exists()
        if not reuse:
            shutil.rmtree(DATA, ignore_errors=True)
            loaded.unlink(missing_ok=True)
            DATA.mkdir(parents=True)
        log("starting the embedded PostgreSQL and tuning it (ALTER SYSTEM + restart)")
        base_url = pg_server.start_tuned({**PG_SETTINGS, **(RUN_SETTINGS if reuse else LOAD_SETTINGS)})
        people = national_ids(opts.recipients, random.Random(20261128))
        if reuse:
            load = Load(**json.loads(loaded.read_text()))
            load.status_mix = {int(k): v for k, v in load.status_mix.items()}
            log("reusing the loaded database")
        else:
            cli("migrate")
            log(f"loading {opts.rows:,} correspondences over {opts.recipients:,} recipients (set-based)")
            load = asyncio.run(fill(db_url(base_url, "correspondence"), people, opts.rows))
            log("restarting PostgreSQL with wal_level=replica for the measurements")
            pg_server.stop()
            base_url = pg_server.start_tuned({**PG_SETTINGS, **RUN_SETTINGS})
            loaded.write_text(json.dumps(asdict(load)))
            log(
                f"loaded in {load.seconds:.0f} s: {load.correspondences_per_s:,.0f} correspondences/s, "
                f"{load.rows_per_s:,.0f} rows/s; {load.rows}; status mix {load.status_mix}"
            )
        if opts.load_only:
            return
        pg = asyncio.run(
            show_settings(
                base_url,
                [*PG_SETTINGS, "fsync", "synchronous_commit", "autovacuum", "wal_level", "server_version"],
            )
        )
        pg_pid = pg_server.postmaster_pid()
        assert pg_pid is not None
        log(f"PostgreSQL {pg['server_version']} up (postmaster {pg_pid}), wal_level {pg['wal_level']}")
        url = db_url(base_url, "correspondence")
        # The sessions of the measured windows: a random sample of the recipients (the service's
        # token cache holds 50,000 tokens; the data is spread over all of them).
        active = random.Random(20261205).sample(people, min(opts.active, len(people)))
        log(f"minting {len(active):,} recipient tokens")
        tokens = mint_tokens(active)
        ids = asyncio.run(visible_ids(url, active, opts.per_recipient))
        requests = write_requests(tokens, ids)
        log(f"warming: the overviews' rows read once ({sum(len(v) for v in ids.values()):,} correspondences)")
        log(f"  … {asyncio.run(warm(url, ids)):.0f} s")

        # A, this tree's code; with --compare REV, B: that commit's, on the next port, in turn with A.
        sides: dict[str, tuple[Server, str]] = {}
        variants = [("this tree", ROOT / "src")]
        if opts.compare:
            variants.append((opts.compare, export_rev(opts.compare)))
        for i, (variant, src) in enumerate(variants):
            port = PORT + i
            serve = [
                venv_bin("correspondence"),
                "serve",
                "--no-worker",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *(["--workers", str(opts.api_workers)] if opts.api_workers != 1 else []),
            ]
            name = "api" if i == 0 else "api-b"
            app = start_server(name, serve, app_env(src), f"http://127.0.0.1:{port}/health", LOGS)
            servers.append(app)
            base = f"http://127.0.0.1:{port}"
            sides[variant] = (app, base)
            asyncio.run(preflight(base, url, tokens, ids))
            log(f"priming [{variant}]: one search per recipient ({len(tokens):,})")
            log(f"  … {prime(base, requests['search'], len(tokens), opts.connections):.0f} s")
        # the plan of the search, for someone with unpublished ones (what the preflight checked)
        probe = _with_unpublished(url)
        plan = asyncio.run(explain(url, probe))
        log(
            f"search plan: index-only {plan.index_only}, heap fetches {plan.heap_fetches}, "
            f"{plan.execution_ms} ms"
        )

        quiet = Quiet(pg_pid, opts.max_other_cpu, opts.max_wait)
        only = {k for k in opts.only.split(",") if k} or set(SCENARIOS)
        results: list[Measurement] = []
        for run in range(1, opts.runs + 1):
            for key in SCENARIOS:
                if key not in only:
                    continue
                order = list(sides) if run % 2 else list(reversed(sides))  # alternate who goes first
                for variant in order:
                    app, base = sides[variant]
                    attempts: list[Measurement] = []
                    for attempt in range(1, opts.retries + 2):
                        tag = f"{key}-{run}" + ("" if app.name == "api" else "-b")
                        spy = OUT / f"search-pyspy-{tag}.txt" if opts.py_spy else None
                        m = measure(
                            key,
                            run,
                            attempt,
                            variant=variant,
                            target=base,
                            requests=requests[REQUESTS[key]],
                            server=app,
                            quiet=quiet,
                            url=url,
                            connections=opts.paced_connections if key == "paced" else opts.connections,
                            pause_ms=opts.paced_pause if key == "paced" else 0,
                            warmup=opts.warmup,
                            duration=opts.duration,
                            py_spy=spy,
                        )
                        if spy is not None and spy.exists():
                            summary = OUT / f"search-profile-{tag}.txt"
                            summary.write_text(summarize_profile(spy), encoding="utf-8")
                            log(f"py-spy summary in {summary.relative_to(ROOT)}")
                        attempts.append(m)
                        if m.other_cpu <= opts.max_other_cpu or attempt > opts.retries:
                            break
                        log(f"others used {m.other_cpu:.0f} % CPU during the window: measuring it again")
                    results.append(min(attempts, key=lambda a: a.other_cpu))  # the least disturbed attempt
        # again after the windows: the overviews' writes must not have cost the scan its index-only-ness
        after = asyncio.run(explain(url, probe))
        log(
            f"search plan after the windows: index-only {after.index_only}, heap fetches {after.heap_fetches}"
        )
        info = machine()
        (OUT / "search-results.json").write_text(
            json.dumps(
                {
                    "argv": argv,
                    "machine": info,
                    "postgres": pg,
                    "load": asdict(load),
                    "plan": asdict(plan),
                    "plan_after": asdict(after),
                    "runs": [asdict(m) for m in results],
                },
                indent=2,
            )
        )
        if not opts.no_report:
            write_section(
                lambda previous: section(
                    results,
                    argv=argv,
                    started=started,
                    info=info,
                    pg=pg,
                    load=load,
                    plan=plan,
                    after=after,
                    opts=opts,
                    previous_analysis=previous,
                )
            )
            log(f"wrote the search section of {RESULTS.relative_to(ROOT)}")
        bad = [m for m in results if m.non2xx or m.socket_errors]
        if bad:
            raise SystemExit(f"{len(bad)} window(s) had non-2xx responses or socket errors")
    finally:
        for server in reversed(servers):
            stop_server(server)
        pg_server.stop()


def _with_unpublished(url: str) -> str:
    async def one() -> str:
        conn = await asyncpg.connect(url)
        try:
            urn: str = await conn.fetchval(
                "SELECT recipient FROM correspondences WHERE status = 1 ORDER BY md5(id::text) LIMIT 1"
            )
            return urn.removeprefix(PERSON_URN)
        finally:
            await conn.close()

    return asyncio.run(one())


if __name__ == "__main__":
    main()
