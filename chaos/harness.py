"""The fault-injection harness: real processes (`correspondence serve` and `worker`), a real
PostgreSQL, the S3 API server (moto), clamd, an SMTP server (tests/smtp_server.py), a webhook
receiver and an SMS gateway (chaos/sink.py), each of which a scenario can kill by signal or stop
and start again on the same address; a client load that records what was acknowledged; and the
checks against the database and the receivers' logs (lost, duplicated).

Everything a scenario starts is registered with its `Stack` and stopped by it (by process group,
never by name). Nothing here asserts: scenarios return numbers, pytest and `python -m chaos` judge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
API = "/correspondence/api/v1"
INITIALIZE = f"{API}/correspondence"
ATTACHMENT = f"{API}/attachment"
SUBSCRIPTIONS = "/events/api/v1/subscriptions"
ORG_URN = "urn:altinn:organization:identifier-no:"
OWNER = "991825827"
PUBLISHED = 2  # correspondence_statuses.status of Published (schemas.STATUS_NAMES)
S3_KEY_ID, S3_SECRET = "chaos-key", "chaos-secret"
UNKNOWN_OUTCOME = "%is unknown%"  # notification/repository.py: a worker died mid-send


def log(message: str) -> None:
    print(f"[chaos {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def python_path() -> str:
    """src/ and the checkout for the children (chaos.sink, tests.smtp_server, correspondence)."""
    parts = [str(ROOT / "src"), str(ROOT)]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRESPONDENCE_")}
    env["PYTHONPATH"] = python_path()
    env.update(extra)
    return env


# --- processes ------------------------------------------------------------------------------------


@dataclass
class Proc:
    """A child in its own process group, with its output in a log file."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as sink:
            self.popen = subprocess.Popen(
                self.cmd, env=self.env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL to the whole group (a serve with --workers has children), then reap."""
        if self.popen is None:
            return
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def wait_http(url: str, proc: Proc | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s" + (f":\n{proc.tail()}" if proc else ""))


# --- PostgreSQL -------------------------------------------------------------------------------------


_MIGRATING = threading.Lock()  # Alembic's context is global: one migration at a time per process


def create_database(server_url: str, prefix: str = "chaos") -> str:
    """A fresh database on the server, migrated once (processes started later migrate nothing)."""
    from correspondence.kit.db import with_database
    from correspondence.kit.migrate import upgrade

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    url = with_database(server_url, name)
    with _MIGRATING:
        upgrade(url)
    return url


def drop_database(server_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    with contextlib.suppress(Exception):
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_bin() -> Path:
    for candidate in (
        Path("/usr/lib/postgresql/15/bin"),
        Path(sys.prefix) / "lib/python3.11/site-packages/pgserver/pginstall/bin",
    ):
        if (candidate / "pg_ctl").exists():
            return candidate
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


class PostgresServer:
    """A PostgreSQL of our own on a free port in a temporary directory, so a scenario can stop it
    hard and start it again (never the shared server). Under root it runs as the `pgserver` user,
    as the embedded default does."""

    def __init__(self) -> None:
        # Its own short directory (a Unix socket lives there), which the server's user can enter.
        self.root = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        os.chmod(self.root, 0o755)
        self.pgdata = self.root / "pgdata"
        self.port = free_port()
        self.bin = _pg_bin()
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "pgserver"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, cwd="/")

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user:
            import pwd

            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.pgdata), "-A", "trust", "-U", "postgres", "--no-sync")
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                "max_connections = 200\nfsync = on\nsynchronous_commit = on\n"
            )

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.root / "postgres.log"), "-w", "start")

    def crash(self) -> None:
        """Immediate shutdown: no checkpoint, connections cut; the next start replays the WAL."""
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "-w", "stop", check=False)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


# --- the external systems ---------------------------------------------------------------------------


class SmtpSink:
    """tests/smtp_server.py on a fixed port; its log (one JSON line per message) survives restarts."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.port = free_port()
        self.log = stack.dir / "smtp.jsonl"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "smtp_server.py"), str(self.log), "--port", str(self.port)],
            stdout=subprocess.PIPE, text=True, start_new_session=True, env=base_env(),
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"SMTP server did not start: {line!r}")

    def stop(self) -> None:
        _stop_popen(self.proc)
        self.proc = None

    def received(self) -> Counter[str]:
        if not self.log.exists():
            return Counter()
        out: Counter[str] = Counter()
        for line in self.log.read_text(encoding="utf-8").splitlines():
            if line:
                record = json.loads(line)
                if record["kind"] == "message":
                    out[record["to"]] += 1
        return out


class HttpSink:
    """chaos/sink.py: webhook receiver or SMS gateway on a fixed port, counts in a file."""

    def __init__(self, stack: Stack, name: str) -> None:
        self.port = free_port()
        self.log = stack.dir / f"{name}.log"
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "chaos" / "sink.py"), str(self.port), str(self.log)],
            stdout=subprocess.PIPE, text=True, start_new_session=True, env=base_env(),
        )  # fmt: skip
        assert self.proc.stdout is not None
        if not self.proc.stdout.readline().startswith("READY"):
            raise RuntimeError("sink did not start")

    def stop(self) -> None:
        _stop_popen(self.proc)
        self.proc = None

    def received(self, kind: str) -> Counter[str]:
        if not self.log.exists():
            return Counter()
        out: Counter[str] = Counter()
        for line in self.log.read_text().splitlines():
            if line.startswith(kind + " "):
                out[line[2:]] += 1
        return out


class Clamd:
    """Debian's clamd in the foreground with a signature database of our own (as the tests'
    fixture), restartable on the same socket."""

    EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

    def __init__(self, stack: Stack) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="chaos-clamd-"))  # short: a Unix socket path
        stack.cleanup.append(lambda: shutil.rmtree(self.root, ignore_errors=True))
        self.socket = self.root / "clamd.sock"
        db = self.root / "db"
        db.mkdir()
        (db / "chaos.ndb").write_text(f"Chaos.Test.EICAR:0:*:{self.EICAR.hex()}\n")
        self.conf = self.root / "clamd.conf"
        self.conf.write_text(
            f"Foreground yes\nDatabaseDirectory {db}\nLocalSocket {self.socket}\n"
            f"TemporaryDirectory {self.root}\nLogFile {self.root / 'clamd.log'}\n"
            "StreamMaxLength 64M\nMaxThreads 4\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("clamd") or os.path.exists("/usr/sbin/clamd"))

    def start(self) -> None:
        binary = shutil.which("clamd") or "/usr/sbin/clamd"
        with (self.root / "clamd.out").open("ab") as sink:
            self.proc = subprocess.Popen(
                [binary, "-c", str(self.conf)], stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while not self._pong():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("clamd did not start")
            time.sleep(0.1)

    def _pong(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as client:
                client.settimeout(2)
                client.connect(str(self.socket))
                client.sendall(b"zPING\0")
                return client.recv(16) == b"PONG\0"
        except OSError:
            return False

    def stop(self) -> None:
        _stop_popen(self.proc)
        self.proc = None
        self.socket.unlink(missing_ok=True)


class MotoS3:
    def __init__(self, stack: Stack) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = Proc(
            "moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            base_env(), stack.dir / "moto.log",
        ).start()  # fmt: skip
        stack.procs.append(self.proc)
        wait_http(self.endpoint + "/moto-api/", self.proc)
        self.bucket = "chaos-" + uuid.uuid4().hex[:8]
        self.client().create_bucket(Bucket=self.bucket)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=S3_KEY_ID,
            aws_secret_access_key=S3_SECRET, region_name="us-east-1",
        )  # fmt: skip

    def keys(self) -> list[str]:
        return sorted(o["Key"] for o in self.client().list_objects_v2(Bucket=self.bucket).get("Contents", []))

    def multipart_uploads(self) -> list[str]:
        listing = self.client().list_multipart_uploads(Bucket=self.bucket)
        return [u["Key"] for u in listing.get("Uploads", [])]

    def env(self) -> dict[str, str]:
        return {
            "CORRESPONDENCE_STORAGE": "s3",
            "CORRESPONDENCE_S3_BUCKET": self.bucket,
            "CORRESPONDENCE_S3_ENDPOINT": self.endpoint,
            "CORRESPONDENCE_S3_ACCESS_KEY_ID": S3_KEY_ID,
            "CORRESPONDENCE_S3_SECRET_ACCESS_KEY": S3_SECRET,
        }


def _stop_popen(proc: subprocess.Popen[Any] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


# --- the stack of one scenario ------------------------------------------------------------------------


@dataclass
class Stack:
    """What one scenario runs: a database, the service's processes and the external systems."""

    dir: Path
    database_url: str
    env_extra: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    sinks: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data_dir = self.dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        return base_env(
            CORRESPONDENCE_DATABASE_URL=self.database_url,
            CORRESPONDENCE_DATA_DIR=str(self.data_dir),
            CORRESPONDENCE_LOG_LEVEL="warning",
            CORRESPONDENCE_ACCESS_LOG="false",
            CORRESPONDENCE_WORKER_POLL_SECONDS="0.2",
            **{**self.env_extra, **extra},
        )

    def serve(self, name: str, port: int | None = None, *args: str, wait: bool = True, **env: str) -> Proc:
        port = port or free_port()
        cmd = [sys.executable, "-m", "correspondence", "serve", "--port", str(port), *args]
        proc = Proc(name, cmd, self.env(**env), self.dir / f"{name}.log").start()
        proc.port = port  # type: ignore[attr-defined]
        self.procs.append(proc)
        if wait:
            wait_http(f"http://127.0.0.1:{port}/health", proc)
        return proc

    def restart(self, proc: Proc, wait: bool = True) -> None:
        proc.kill()
        proc.start()
        port = getattr(proc, "port", None)
        if wait and port:
            wait_http(f"http://127.0.0.1:{port}/health", proc)

    def worker(self, name: str, **env: str) -> Proc:
        cmd = [sys.executable, "-m", "correspondence", "worker"]
        proc = Proc(name, cmd, self.env(**env), self.dir / f"{name}.log").start()
        self.procs.append(proc)
        return proc

    def smtp(self) -> SmtpSink:
        sink = SmtpSink(self)
        sink.start()
        self.sinks.append(sink)
        self.env_extra.update(
            CORRESPONDENCE_SMTP_HOST="127.0.0.1",
            CORRESPONDENCE_SMTP_PORT=str(sink.port),
            CORRESPONDENCE_SMTP_TLS="none",
        )
        return sink

    def http_sink(self, name: str) -> HttpSink:
        sink = HttpSink(self, name)
        sink.start()
        self.sinks.append(sink)
        return sink

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(10)
        for sink in self.sinks:
            sink.stop()
        for fn in self.cleanup:
            with contextlib.suppress(Exception):
                fn()

    # -- data --

    def token(self, org: str = OWNER, scope: str = "altinn:correspondence.write altinn:serviceowner") -> str:
        from correspondence.auth.tokens import DevIssuer
        from correspondence.config import Settings

        settings = Settings(data_dir=self.data_dir, mode="development")
        return DevIssuer(settings.dev_issuer, self.data_dir, 24 * 3600).mint(scope=scope, org=org)

    async def setup_registry(self, resource: str, orgs: list[str], *, mobile: bool = False) -> None:
        """The resource and one contact point per recipient organisation (COPY, as the benches)."""
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute(
                "INSERT INTO resources (resource_id, owner_org, title) VALUES ($1, $2, 'Chaos')"
                " ON CONFLICT DO NOTHING",
                resource,
                OWNER,
            )
            if orgs:
                await conn.copy_records_to_table(
                    "contacts",
                    records=[
                        (ORG_URN + o, email_of(o), mobile_of(o) if mobile else None, False) for o in orgs
                    ],
                    columns=["party", "email", "mobile", "reserved"],
                )
        finally:
            await conn.close()


def email_of(org: str) -> str:
    return f"post-{org}@chaos.example"


def mobile_of(org: str) -> str:
    return f"+47{90000000 + int(org) % 10_000_000}"


def orgs(n: int, start: int = 400_000_000) -> list[str]:
    return [str(start + i) for i in range(n)]


def initialize_body(
    resource: str, recipients: list[str], *, key: str | None = None, channel: str | None = None
) -> dict[str, Any]:
    correspondence: dict[str, Any] = {
        "resourceId": resource,
        "sendersReference": "chaos-" + uuid.uuid4().hex[:8],
        "content": {
            "language": "nb",
            "messageTitle": "Vedtak",
            "messageSummary": "Sammendrag",
            "messageBody": "Dette er **vedtaket**.",
        },
    }
    if channel is not None:
        correspondence["notification"] = {
            "notificationTemplate": "GenericAltinnMessage",
            "notificationChannel": channel,
        }
    body: dict[str, Any] = {"correspondence": correspondence, "recipients": [f"0192:{o}" for o in recipients]}
    if key is not None:
        body["idempotentKey"] = key
    return body


# --- client load ------------------------------------------------------------------------------------------


@dataclass
class Load:
    """What a client load saw: the acknowledged correspondences (2xx), per idempotency key the
    answers it got, and the time line of failures and successes (for recovery)."""

    acknowledged: set[str] = field(default_factory=set)
    answers_by_key: dict[str, list[list[str]]] = field(default_factory=dict)
    replayed: int = 0
    attempts: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    unacknowledged: int = 0  # requests given up without a 2xx (no key: a client that does not retry)
    successes: list[tuple[float, float]] = field(default_factory=list)  # (sent, answered) of 2xx
    retry_after_seen: int = 0
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)  # per key, for replays

    def first_success_after(self, t: float) -> float | None:
        """When the first request sent after `t` was answered 2xx."""
        later = [answered for sent, answered in self.successes if sent > t]
        return min(later) if later else None


async def initialize_load(
    urls: list[str],
    token: str,
    resource: str,
    recipients: Iterator[list[str]],
    *,
    seconds: float,
    concurrency: int,
    use_keys: bool,
    channel: str | None = None,
    retry_for: float = 60.0,
    keep_going: Callable[[Load], bool] | None = None,
) -> Load:
    """`concurrency` clients sending Initialize for `seconds`, round robin over `urls`. With keys a
    client retries a request that got no 2xx (connection error, 5xx) with the same body and key,
    on any API, until it is answered (at most `retry_for` seconds after the load ends); without,
    it gives up on it, as a client that does not retry would."""
    load = Load()
    headers = {"Authorization": f"Bearer {token}"}
    end = time.monotonic() + seconds
    turn = iter(range(10**9))

    def running() -> bool:
        now = time.monotonic()
        return now < end or (keep_going is not None and now < end + retry_for and keep_going(load))

    async def client(c: httpx.AsyncClient) -> None:
        while running():
            try:
                batch = next(recipients)
            except StopIteration:
                return
            key = str(uuid.uuid4()) if use_keys else None
            body = initialize_body(resource, batch, key=key, channel=channel)
            give_up = end + retry_for
            while True:
                url = urls[next(turn) % len(urls)]
                load.attempts += 1
                sent = time.monotonic()
                try:
                    response = await c.post(url + INITIALIZE, json=body, headers=headers)
                except httpx.HTTPError as exc:
                    load.failures[type(exc).__name__] += 1
                else:
                    if response.status_code < 300:
                        ids = [x["correspondenceId"] for x in response.json()["correspondences"]]
                        load.acknowledged.update(ids)
                        load.successes.append((sent, time.monotonic()))
                        if key is not None:
                            load.answers_by_key.setdefault(key, []).append(ids)
                            load.bodies[key] = body
                        if response.headers.get("Idempotent-Replayed") == "true":
                            load.replayed += 1
                        break
                    load.failures[f"HTTP {response.status_code}"] += 1
                    if response.headers.get("Retry-After"):
                        load.retry_after_seen += 1
                    if response.status_code < 500:
                        detail = f"{response.status_code} {response.text[:300]}"
                        raise RuntimeError(f"Initialize refused: {detail}")
                await asyncio.sleep(0.1 + random.random() * 0.2)
                if key is None or time.monotonic() > give_up:
                    load.unacknowledged += 1
                    break

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=15, limits=limits) as c:
        await asyncio.gather(*(client(c) for _ in range(concurrency)))
    return load


def recipient_stream(pool: list[str], per_request: int = 1) -> Iterator[list[str]]:
    """Each recipient once (so each address gets one notification at most), then nothing."""
    for i in range(0, len(pool), per_request):
        yield pool[i : i + per_request]


# --- checks -----------------------------------------------------------------------------------------------


@dataclass
class Check:
    acknowledged: int = 0
    lost: int = 0  # acknowledged but missing or unpublished
    duplicated: int = 0  # correspondences published more than once
    stored: int = 0  # correspondences in the database
    details: dict[str, Any] = field(default_factory=dict)


async def wait_drained(url: str, query: str, timeout: float, *args: Any) -> bool:
    """Poll until `query` (a count of what is still to do) answers 0."""
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await conn.fetchval(query, *args) == 0:
                return True
            await asyncio.sleep(0.25)
        return False
    finally:
        await conn.close()


async def count(url: str, query: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(query))
    finally:
        await conn.close()


UNPUBLISHED = "SELECT count(*) FROM correspondences WHERE published IS NULL"
NOTIFICATIONS_PENDING = """
SELECT (SELECT count(*) FROM notification_orders WHERE is_reminder = false
          AND processing_status NOT IN ('Order_Completed', 'Order_SendConditionNotMet'))
     + (SELECT count(*) FROM notification_deliveries
          WHERE status IN ('Email_New', 'Email_Sending', 'Email_Failed_TransientError',
                           'SMS_New', 'SMS_Sending', 'SMS_Failed_TransientError'))"""
EVENTS_PENDING = """
SELECT (SELECT count(*) FROM event_outbox WHERE dispatched IS NULL)
     + (SELECT count(*) FROM event_deliveries WHERE status = 0)"""
JOBS_PENDING = "SELECT count(*) FROM jobs WHERE status IN (0, 1) AND run_at <= now() + interval '1 minute'"


async def check_publishes(url: str, acknowledged: set[str]) -> Check:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """SELECT c.id::text AS id, c.published IS NOT NULL AS published,
                      (SELECT count(*) FROM correspondence_statuses s
                        WHERE s.correspondence_id = c.id AND s.status = $1) AS publishes
               FROM correspondences c""",
            PUBLISHED,
        )
    finally:
        await conn.close()
    published = {r["id"] for r in rows if r["published"] and r["publishes"] >= 1}
    check = Check(acknowledged=len(acknowledged), stored=len(rows))
    check.lost = len(acknowledged - published)
    check.duplicated = sum(1 for r in rows if r["publishes"] > 1)
    return check


async def check_keys(url: str, load: Load) -> dict[str, int]:
    """Per idempotency key: the correspondences stored with it, against every answer the client
    got for it (the first and any replays must name exactly those)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT idempotent_key::text AS key, array_agg(id::text) AS ids FROM correspondences"
            " WHERE idempotent_key IS NOT NULL GROUP BY idempotent_key"
        )
    finally:
        await conn.close()
    stored = {r["key"]: sorted(r["ids"]) for r in rows}
    mismatched = sum(
        1
        for key, answers in load.answers_by_key.items()
        if any(sorted(a) != stored.get(key) for a in answers)
    )
    return {"keys": len(load.answers_by_key), "answers_not_matching_the_stored": mismatched}


async def replay_keys(urls: list[str], token: str, load: Load, sample: int = 50) -> int:
    """Send acknowledged keyed requests again, as a client that never saw its answer would: each
    must be answered from the original (Idempotent-Replayed, the same ids), never with new
    correspondences. Returns how many were not."""
    bad = 0
    headers = {"Authorization": f"Bearer {token}"}
    keys = list(load.answers_by_key)[:sample]
    async with httpx.AsyncClient(timeout=15) as c:
        for i, key in enumerate(keys):
            response = await c.post(urls[i % len(urls)] + INITIALIZE, json=load.bodies[key], headers=headers)
            ids = [x["correspondenceId"] for x in response.json().get("correspondences", [])]
            if (
                response.status_code != 200
                or response.headers.get("Idempotent-Replayed") != "true"
                or sorted(ids) != sorted(load.answers_by_key[key][0])
            ):
                bad += 1
    return bad


async def notification_check(url: str, smtp: SmtpSink | None, sms: HttpSink | None) -> dict[str, int]:
    """E-mails and SMS: each address's messages at the receiver against the delivery rows."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT channel, address, status, coalesce(last_error, '') LIKE $1 AS unknown"
            " FROM notification_deliveries",
            UNKNOWN_OUTCOME,
        )
    finally:
        await conn.close()
    out: dict[str, int] = {}
    for channel, receiver, ok in (
        ("Email", smtp.received() if smtp else None, "Email_Succeeded"),
        ("SMS", sms.received("S") if sms else None, "SMS_Accepted"),
    ):
        if receiver is None:
            continue
        mine = [r for r in rows if r["channel"] == channel]
        unknown = {r["address"] for r in mine if r["unknown"]}
        succeeded = {r["address"] for r in mine if r["status"] == ok}
        name = "emails" if channel == "Email" else "sms"
        out[f"{name}_expected"] = len(mine)
        out[f"{name}_received"] = len(receiver)
        out[f"{name}_duplicated"] = sum(n - 1 for n in receiver.values() if n > 1)
        # Lost: the service says it went out but the server never got it, or the row is not final
        # (neither sent nor failed), or it failed for another reason than an unknown outcome.
        out[f"{name}_lost"] = sum(
            1 for r in mine if r["address"] not in receiver and r["address"] not in unknown
        ) + len(succeeded - set(receiver))
        out[f"{name}_unknown_outcome"] = len(unknown)
    return out


async def events_check(url: str, hook: HttpSink, type_suffix: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        ids = {
            str(r["id"])
            for r in await conn.fetch("SELECT id FROM events WHERE type LIKE '%' || $1", type_suffix)
        }
    finally:
        await conn.close()
    received = hook.received("W")
    return {
        "events": len(ids),
        "events_lost": len(ids - set(received)),
        "events_delivered_twice": sum(n - 1 for n in received.values() if n > 1),
    }


async def subscribe(base_url: str, token: str, endpoint: str, type_filter: str | None) -> None:
    body: dict[str, Any] = {"endPoint": endpoint, "resourceFilter": None}
    if type_filter:
        body["typeFilter"] = type_filter
    async with httpx.AsyncClient(timeout=15) as c:
        response = await c.post(
            base_url + SUBSCRIPTIONS, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code != 201:
            raise RuntimeError(f"subscribe failed: {response.status_code} {response.text[:300]}")


# --- feature checks (for what the parallel branches bring) ------------------------------------------------


def serve_help() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "correspondence", "serve", "--help"],
        env=base_env(COLUMNS="200"), capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout + done.stderr


def has_serve_workers() -> bool:
    return "--workers" in serve_help()


def default_job_lease() -> float:
    from correspondence.config import Settings

    return float(Settings.model_fields["job_lease_seconds"].default)
