"""Several processes on one machine: job leases kept alive by a heartbeat, workers that stop
gracefully (finishing or releasing their jobs) or are killed outright (their jobs taken again
after the lease), and `serve --workers N` (N API processes on one port, one embedded PostgreSQL).

The slow handler in the process tests is the real publish job, held up by a row lock the test
takes on one of the correspondences it publishes: the worker claims the jobs and waits inside
its batch for as long as the test wants."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from correspondence.app import build_worker
from correspondence.kit import clock
from correspondence.kit.jobs import Job, Worker
from correspondence.services import Services
from tests import builders
from tests.conftest import INITIALIZE, Sender

PUBLISHED = 2  # correspondence_statuses.status


async def create_batches(client: httpx.AsyncClient, sender: Sender, requests: int) -> list[str]:
    """`requests` Initialize calls of two recipients each: one publish job per call."""
    ids: list[str] = []
    for _ in range(requests):
        body = builders.initialize_body(sender.resource_id, [builders.national_id(), builders.national_id()])
        response = await client.post(INITIALIZE, json=body, headers=sender.headers)
        assert response.status_code == 200, response.text
        ids += [c["correspondenceId"] for c in response.json()["correspondences"]]
    return ids


async def publish_jobs(db: asyncpg.Connection, ids: list[str]) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await db.fetch(
        """SELECT id, status, attempts, locked_until FROM jobs
           WHERE task = 'correspondence.publish' AND payload->'ids' ?| $1::text[] ORDER BY id""",
        ids,
    )
    return rows


async def published_count(db: asyncpg.Connection, ids: list[str]) -> dict[str, int]:
    """How many Published statuses each correspondence has (exactly once: 1 each)."""
    rows = await db.fetch(
        """SELECT c.id::text AS id, count(s.status) AS n FROM unnest($1::uuid[]) c(id)
           LEFT JOIN correspondence_statuses s ON s.correspondence_id = c.id AND s.status = $2
           GROUP BY c.id""",
        ids,
        PUBLISHED,
    )
    return {r["id"]: r["n"] for r in rows}


async def wait_for(what: str, check: Any, seconds: float = 60) -> Any:
    """Poll `check()` until it returns something truthy, or fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.1)
    pytest.fail(f"not within {seconds} s: {what}")


@pytest.fixture
async def row_lock(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection with an open transaction, for holding row locks until the test lets go."""
    conn = await asyncpg.connect(database_url)
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield conn
    finally:
        if not conn.is_closed():
            await transaction.rollback()
            await conn.close()


async def lock_correspondence(conn: asyncpg.Connection, cid: str) -> None:
    await conn.execute("SELECT 1 FROM correspondences WHERE id = $1 FOR UPDATE", uuid.UUID(cid))


def worker_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "CORRESPONDENCE_DATABASE_URL": database_url,
        "CORRESPONDENCE_DATA_DIR": str(data_dir),
        "CORRESPONDENCE_WORKER_POLL_SECONDS": "0.2",
        **extra,
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "correspondence", "worker"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(30)


# --- The worker in-process: heartbeat, finishing and releasing -------------------------------


@pytest.fixture
async def slow_task(db: asyncpg.Connection) -> AsyncIterator[str]:
    """A task name of this test alone; its jobs are deleted afterwards."""
    task = f"test.slow.{uuid.uuid4().hex[:8]}"
    yield task
    await db.execute("DELETE FROM jobs WHERE task LIKE $1", task + "%")


async def enqueue(db: asyncpg.Connection, task: str, run_at: datetime | None = None) -> int:
    job_id: int = await db.fetchval(
        "INSERT INTO jobs (task, run_at, created) VALUES ($1, $2, $2) RETURNING id",
        task,
        run_at or clock.now(),
    )
    return job_id


def worker_with(services: Services, **settings: Any) -> Worker:
    """The real worker (every handler registered, so other tests' leftover jobs run as usual)."""
    return build_worker(replace(services, settings=services.settings.model_copy(update=settings)))


async def test_the_heartbeat_keeps_the_lease_of_a_long_batch(
    services: Services, db: asyncpg.Connection, slow_task: str
) -> None:
    worker = worker_with(services, job_lease_seconds=1.5)
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow(conn: asyncpg.Connection, jobs: list[Job]) -> None:
        started.set()
        await finish.wait()

    worker.register(slow_task, slow)
    job = await enqueue(db, slow_task)
    running = asyncio.create_task(worker.run_once())
    await asyncio.wait_for(started.wait(), 60)
    first = await db.fetchval("SELECT locked_until FROM jobs WHERE id = $1", job)

    async def extended() -> bool:
        later = await db.fetchval("SELECT locked_until FROM jobs WHERE id = $1", job)
        return bool(later > first and clock.now() > first)  # past the first lease, and still held

    await wait_for("the lease is extended past its first end", extended)
    assert await db.fetchval("SELECT status FROM jobs WHERE id = $1", job) == 1
    other = worker_with(services)
    assert job not in [j.id for j in await other.claim()]  # nobody else takes a job kept alive
    finish.set()
    await asyncio.wait_for(running, 60)
    row = await db.fetchrow("SELECT status, attempts, locked_until FROM jobs WHERE id = $1", job)
    assert (row["status"], row["attempts"], row["locked_until"]) == (2, 1, None)


async def test_a_round_runs_its_jobs_oldest_first(
    services: Services, db: asyncpg.Connection, slow_task: str
) -> None:
    ran: list[int] = []

    async def record(conn: asyncpg.Connection, jobs: list[Job]) -> None:
        ran.extend(j.id for j in jobs)

    worker = worker_with(services)
    for suffix in ("", ".b", ".c"):
        worker.register(slow_task + suffix, record)
    # enqueued newest first, so the table's (and RETURNING's) order is the reverse of run_at's
    newest = await enqueue(db, slow_task, clock.now() - timedelta(seconds=1))
    middle = await enqueue(db, slow_task + ".b", clock.now() - timedelta(seconds=2))
    oldest = await enqueue(db, slow_task + ".c", clock.now() - timedelta(seconds=3))
    claimed = [j.id for j in await worker.claim() if j.task.startswith(slow_task)]
    assert claimed == [oldest, middle, newest]
    await db.execute("UPDATE jobs SET status = 0, locked_until = NULL WHERE id = ANY($1::bigint[])", claimed)
    await worker.run_once()
    assert ran == [oldest, middle, newest]


async def test_a_stopping_worker_finishes_its_running_batch_and_releases_the_rest(
    services: Services, db: asyncpg.Connection, slow_task: str
) -> None:
    worker = worker_with(services)
    started, finish = asyncio.Event(), asyncio.Event()
    later_ran: list[int] = []

    async def slow(conn: asyncpg.Connection, jobs: list[Job]) -> None:
        started.set()
        await finish.wait()

    async def later(conn: asyncpg.Connection, jobs: list[Job]) -> None:
        later_ran.extend(j.id for j in jobs)

    worker.register(slow_task, slow)
    worker.register(slow_task + ".later", later)
    first = await enqueue(db, slow_task, clock.now() - timedelta(seconds=2))
    second = await enqueue(db, slow_task + ".later", clock.now() - timedelta(seconds=1))
    running = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 60)
    worker.stop()
    finish.set()  # within the shutdown time: the running batch completes
    await asyncio.wait_for(running, 60)
    done = await db.fetchrow("SELECT status, attempts, locked_until FROM jobs WHERE id = $1", first)
    assert (done["status"], done["attempts"], done["locked_until"]) == (2, 1, None)
    released = await db.fetchrow("SELECT status, attempts, locked_until FROM jobs WHERE id = $1", second)
    assert (released["status"], released["attempts"], released["locked_until"]) == (0, 0, None)
    assert later_ran == []


async def test_a_batch_that_outlasts_the_shutdown_time_is_rolled_back_and_released(
    services: Services, db: asyncpg.Connection, slow_task: str
) -> None:
    worker = worker_with(services, worker_shutdown_seconds=0.2)
    started = asyncio.Event()

    async def stuck(conn: asyncpg.Connection, jobs: list[Job]) -> None:
        await conn.execute("UPDATE jobs SET last_error = 'written by the handler' WHERE id = $1", jobs[0].id)
        started.set()
        await asyncio.Event().wait()  # never finishes

    worker.register(slow_task, stuck)
    job = await enqueue(db, slow_task)
    running = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 60)
    worker.stop()
    await asyncio.wait_for(running, 60)
    row = await db.fetchrow("SELECT status, attempts, locked_until, last_error FROM jobs WHERE id = $1", job)
    assert (row["status"], row["attempts"], row["locked_until"], row["last_error"]) == (0, 0, None, None)


# --- `correspondence worker` processes ---------------------------------------------------------


async def test_sigterm_to_a_worker_process_releases_its_jobs_at_once_for_another_worker(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    row_lock: asyncpg.Connection,
    database_url: str,
    data_dir: Path,
) -> None:
    ids = await create_batches(client, sender, 5)
    await lock_correspondence(row_lock, ids[-1])  # the publish batch waits for this row
    # A lease far longer than the test: jobs queued again can only have been released.
    env = worker_env(
        database_url,
        data_dir,
        CORRESPONDENCE_JOB_LEASE_SECONDS="600",
        CORRESPONDENCE_WORKER_SHUTDOWN_SECONDS="1",
    )
    log = data_dir / f"worker-sigterm-{uuid.uuid4().hex[:6]}.log"
    first = start_worker(env, log)
    second: subprocess.Popen[bytes] | None = None
    try:

        async def all_claimed() -> bool:
            rows = await publish_jobs(db, ids)
            return len(rows) == 5 and all(r["status"] == 1 for r in rows)

        await wait_for("the worker claims the publish jobs", all_claimed)
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0, log.read_text()
        rows = await publish_jobs(db, ids)
        assert [(r["status"], r["attempts"], r["locked_until"]) for r in rows] == [(0, 0, None)] * 5
        assert set((await published_count(db, ids)).values()) == {0}

        await row_lock.execute("ROLLBACK")
        second = start_worker(env, log)

        async def all_published() -> bool:
            return set((await published_count(db, ids)).values()) == {1}

        await wait_for("another worker publishes them", all_published)
        rows = await publish_jobs(db, ids)
        assert [(r["status"], r["attempts"]) for r in rows] == [(2, 1)] * 5
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, log.read_text()
    finally:
        stop(first)
        if second is not None:
            stop(second)


async def test_a_killed_worker_s_jobs_are_taken_again_after_the_lease_and_published_once(
    client: httpx.AsyncClient,
    sender: Sender,
    db: asyncpg.Connection,
    row_lock: asyncpg.Connection,
    database_url: str,
    data_dir: Path,
) -> None:
    ids = await create_batches(client, sender, 5)
    await lock_correspondence(row_lock, ids[0])
    env = worker_env(database_url, data_dir, CORRESPONDENCE_JOB_LEASE_SECONDS="3")
    log = data_dir / f"worker-sigkill-{uuid.uuid4().hex[:6]}.log"
    doomed = start_worker(env, log)
    survivor: subprocess.Popen[bytes] | None = None
    try:

        async def all_claimed() -> list[asyncpg.Record] | None:
            rows = await publish_jobs(db, ids)
            return rows if len(rows) == 5 and all(r["status"] == 1 for r in rows) else None

        claimed = await wait_for("the first worker claims the publish jobs", all_claimed)
        first_lease_end = max(r["locked_until"] for r in claimed)
        survivor = start_worker(env, log)  # polls all along, but must not take jobs kept alive

        async def held_past_first_lease() -> bool:
            return clock.now() > first_lease_end + timedelta(seconds=3)

        await wait_for("a whole lease after the first one ran out", held_past_first_lease)
        rows = await publish_jobs(db, ids)
        assert [(r["status"], r["attempts"]) for r in rows] == [(1, 1)] * 5  # the heartbeat held them
        assert all(r["locked_until"] > first_lease_end for r in rows)

        doomed.send_signal(signal.SIGKILL)
        doomed.wait(30)
        killed_at = time.monotonic()

        async def taken_again() -> bool:
            rows = await publish_jobs(db, ids)
            return all(r["attempts"] == 2 for r in rows)

        await wait_for("the surviving worker takes the jobs again", taken_again)
        print(
            f"jobs of a SIGKILLed worker taken again after {time.monotonic() - killed_at:.1f} s (lease 3 s)"
        )
        await row_lock.execute("ROLLBACK")

        async def all_published() -> bool:
            rows = await publish_jobs(db, ids)
            return all(r["status"] == 2 for r in rows)

        await wait_for("the surviving worker publishes them", all_published)
        assert set((await published_count(db, ids)).values()) == {1}  # each exactly once
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(60) == 0, log.read_text()
    finally:
        stop(doomed)
        if survivor is not None:
            stop(survivor)


# --- `correspondence serve --workers 2` -------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def own_data_dir() -> Iterator[Path]:
    """A data directory of its own (short: the embedded server's socket lives in it)."""
    with tempfile.TemporaryDirectory(prefix="corr-serve-") as tmp:
        yield Path(tmp)


def listeners(parent: psutil.Process, port: int) -> list[psutil.Process]:
    """The parent's child processes listening on `port`."""
    out = []
    for child in parent.children(recursive=True):
        try:
            if any(
                c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in child.net_connections("inet")
            ):
                out.append(child)
        except psutil.NoSuchProcess:
            continue
    return out


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "correspondence", *args], env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def test_serve_with_two_workers_answers_from_two_processes_and_stops_cleanly(own_data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRESPONDENCE_")}
    env |= {"CORRESPONDENCE_DATA_DIR": str(own_data_dir), "CORRESPONDENCE_WORKER_POLL_SECONDS": "0.2"}
    port = _free_port()
    log = own_data_dir / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "correspondence", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        parent = psutil.Process(server.pid)
        deadline = time.monotonic() + 90
        while len(listeners(parent, port)) < 2 or not _healthy(base):
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "not serving within 90 s:\n" + log.read_text()
            time.sleep(0.2)
        api = listeners(parent, port)
        assert len(api) == 2 and len({p.pid for p in api}) == 2
        postmaster = int((own_data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
        assert psutil.pid_exists(postmaster)

        org, recipient = builders.org_number(), builders.national_id()
        _cli(env, "resource", "add", "procs-resource", "--owner", org)
        token = _cli(env, "token", "--org", org, "--scope", "altinn:correspondence.write altinn:serviceowner")
        headers = {"Authorization": f"Bearer {token}"}
        ids = []
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            for _ in range(10):  # new connections: the kernel spreads them over both processes
                body = builders.initialize_body("procs-resource", [recipient])
                response = http.post(INITIALIZE, json=body, headers={"Connection": "close"})
                assert response.status_code == 200, response.text
                ids.append(response.json()["correspondences"][0]["correspondenceId"])
            for cid in ids:  # the parent's job worker publishes them
                deadline = time.monotonic() + 60
                while http.get(f"{INITIALIZE}/{cid}").json()["status"] != "Published":
                    assert time.monotonic() < deadline, "not published within 60 s:\n" + log.read_text()
                    time.sleep(0.2)

        # A request in flight when SIGTERM comes (its body half sent) is still answered.
        half_sent, answer = threading.Event(), concurrent.futures.Future[httpx.Response]()
        body = json.dumps(builders.initialize_body("procs-resource", [recipient])).encode()

        def slow_body() -> Iterator[bytes]:
            yield body[:20]
            half_sent.set()
            time.sleep(1.0)  # SIGTERM arrives meanwhile
            yield body[20:]

        def in_flight() -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
                json_type = {"Content-Type": "application/json"}
                answer.set_result(http.post(INITIALIZE, content=slow_body(), headers=json_type))

        threading.Thread(target=in_flight, daemon=True).start()
        assert half_sent.wait(60)
        server.send_signal(signal.SIGTERM)
        response = answer.result(60)
        assert response.status_code == 200, response.text
        assert server.wait(60) == 0, log.read_text()
        for process in api:
            assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
        deadline = time.monotonic() + 60
        while psutil.pid_exists(postmaster):  # the embedded PostgreSQL stops with the parent
            assert time.monotonic() < deadline, "embedded PostgreSQL still running"
            time.sleep(0.2)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(30)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
