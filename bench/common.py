"""Small helpers shared by the benchmark scripts (bench/ is a directory of scripts, not a package).

They follow bench/initialize.py's helpers of the same names, with the embedded PostgreSQL's data
directory and the wrk script passed in rather than fixed, so that another benchmark can have its own
database beside Initialize's. Import with `sys.path.insert(0, str(Path(__file__).parent))`.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
PERSON_URN = "urn:altinn:person:identifier-no:"
ORG_URN = "urn:altinn:organization:identifier-no:"

# As bench/initialize.py (initialize-ceiling.md §1): set with ALTER SYSTEM, then a restart.
PG_SETTINGS = {
    "shared_buffers": "2GB",
    "max_wal_size": "4GB",
    "wal_compression": "on",
    "checkpoint_timeout": "15min",
    "max_connections": "200",
}


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def venv_bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found (run `make setup`)")
    return found


def child_env(**extra: str) -> dict[str, str]:
    """Our environment without inherited CORRESPONDENCE_* settings, with `extra` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRESPONDENCE_")}
    env.update(extra)
    return env


def db_url(base: str, database: str) -> str:
    return re.sub(r"/postgres\?", f"/{database}?", base, count=1)


# --- embedded PostgreSQL ------------------------------------------------------------------------


@dataclass
class EmbeddedPostgres:
    """The pgserver instance under `pgdata` (= <data dir>/pgdata, where the service looks for it)."""

    pgdata: Path

    def postmaster_pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return None
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (ValueError, OSError):
            return None
        return pid if psutil.pid_exists(pid) else None

    def stop(self) -> None:
        pid = self.postmaster_pid()
        if pid is None:
            return
        log(f"stopping PostgreSQL (postmaster {pid}, SIGINT = fast shutdown)")
        os.kill(pid, signal.SIGINT)
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).wait(60)

    def start(self) -> str:
        """Start (or join) the server in a child process; returns the URI of database `postgres`."""
        code = (
            "import pgserver, sys; "
            f"s = pgserver.get_server({str(self.pgdata)!r}, cleanup_mode=None); "
            "sys.stdout.write(s.get_uri('postgres'))"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"could not start the embedded PostgreSQL:\n{done.stderr}")
        return done.stdout.strip().splitlines()[-1]

    def hold(self) -> None:
        """Register this process as a user: the service's verbs stop the server when its last user
        exits; while we hold it, it stays up until stop()."""
        import warnings

        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import pgserver

        pgserver.get_server(self.pgdata, cleanup_mode=None)  # type: ignore[attr-defined]

    def start_tuned(self, settings: dict[str, str] = PG_SETTINGS) -> str:
        """Start, ALTER SYSTEM the settings, restart, hold; returns the URI of database `postgres`."""
        url = self.start()

        async def tune() -> None:
            conn = await asyncpg.connect(url)
            try:
                for name, value in settings.items():
                    await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            finally:
                await conn.close()

        import asyncio

        asyncio.run(tune())
        self.stop()
        url = self.start()
        self.hold()
        return url


async def show_settings(url: str, names: list[str]) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        return {n: str(await conn.fetchval(f"SHOW {n}")) for n in names}
    finally:
        await conn.close()


# --- identities -----------------------------------------------------------------------------------

_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def _control(digits: str, weights: tuple[int, ...]) -> int | None:
    c = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return 0 if c == 11 else (None if c == 10 else c)


def national_ids(count: int, rng: random.Random) -> list[str]:
    """`count` distinct valid Norwegian national identity numbers (mod-11)."""
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(0, 99)
        base = f"{day:02d}{month:02d}{year:02d}{rng.randint(0, 999):03d}"
        k1 = _control(base, _W1)
        if k1 is None:
            continue
        k2 = _control(base + str(k1), _W2)
        if k2 is None:
            continue
        ssn = base + str(k1) + str(k2)
        if ssn not in seen:
            seen.add(ssn)
            out.append(ssn)
    return out


# --- processes ----------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.proc.pid


def start_server(name: str, cmd: list[str], env: dict[str, str], health_url: str, logs: Path) -> Server:
    logs.mkdir(parents=True, exist_ok=True)
    logfile = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child for its lifetime
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}; see {logs / (name + '.log')}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(health_url, timeout=1).status_code < 500:
                log(f"{name} is up (pid {proc.pid})")
                return Server(name, proc, health_url)
        time.sleep(0.2)
    raise SystemExit(f"{name} did not become healthy; see {logs / (name + '.log')}")


def stop_server(server: Server) -> None:
    if server.proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.proc.wait(20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.proc.wait(5)
    log(f"{server.name} stopped")


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_snapshot(pid: int, reaped: bool = False) -> dict[int, float]:
    """CPU seconds per process of a tree; with `reaped`, the root also counts its exited children."""
    out: dict[int, float] = {}
    for p in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
            if reaped and p.pid == pid:
                out[p.pid] += t.children_user + t.children_system
    return out


def cpu_delta(before: dict[int, float], after: dict[int, float], reaped: bool = False) -> float:
    """CPU seconds used between two snapshots. With `reaped` snapshots, a child that exited in
    between (an autovacuum worker) reappears whole in its parent's children time, so what it had
    used before the first snapshot is taken off again."""
    used = sum(v - before.get(pid, 0.0) for pid, v in after.items())
    if reaped:
        used -= sum(v for pid, v in before.items() if pid not in after)
    return used


def box_busy() -> float:
    """Busy CPU seconds of the machine, without user time at nice > 0: background work that others
    run niced (tests, builds) yields to the measured processes and is not counted as disturbance."""
    t = psutil.cpu_times()
    return float(t.user + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0))


def io_stalled() -> float:
    """Seconds in which some task of the machine waited for I/O (/proc/pressure/io "some"; 0 where the
    kernel has no pressure stall information). A window's share says how much the disk held it up:
    a WAL flush that stalls holds every request waiting for its commit."""
    try:
        with open("/proc/pressure/io", encoding="ascii") as f:
            for line in f:
                if line.startswith("some "):
                    return int(line.rsplit("total=", 1)[1]) / 1e6
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def own_cpu(pg_pid: int) -> dict[int, float]:
    """CPU seconds of everything we run: this process and its children (servers, wrk) and PostgreSQL."""
    return {**cpu_snapshot(os.getpid(), reaped=True), **cpu_snapshot(pg_pid, reaped=True)}


@dataclass
class Quiet:
    """Keeps other people's work on this shared machine out of the measured windows."""

    pg_pid: int
    limit: float  # CPU % (100 = one core) that everything else may use during a window
    max_wait: float  # seconds to wait for a quiet machine before measuring anyway

    def others(self, seconds: float) -> float:
        ours0, box0, t0 = own_cpu(self.pg_pid), box_busy(), time.monotonic()
        time.sleep(seconds)
        ours1, box1, wall = own_cpu(self.pg_pid), box_busy(), time.monotonic() - t0
        return 100 * ((box1 - box0) - cpu_delta(ours0, ours1, reaped=True)) / wall

    def wait(self) -> float:
        """Wait until others use at most `limit`; returns what they used in the last 2 s."""
        deadline = time.monotonic() + self.max_wait
        while True:
            other = self.others(2.0)
            if other <= self.limit:
                return other
            if time.monotonic() > deadline:
                log(f"other processes still use {other:.0f} % CPU after {self.max_wait:.0f} s; going on")
                return other
            log(f"other processes use {other:.0f} % CPU; waiting for a quiet machine")


class RssSampler(threading.Thread):
    """Peak RSS of a process tree, sampled every 0.25 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss = 0
            for p in tree(self.pid):
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss += p.memory_info().rss
            self.peak = max(self.peak, rss)
            self._stop_event.wait(0.25)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def run_wrk(url: str, lua: Path, env: dict[str, str], connections: int, seconds: int) -> dict[str, Any]:
    """wrk -t1 with a script that prints a `BENCH_JSON {...}` summary line (see bench/multi.lua)."""
    cmd = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
        "-s", str(lua), url,
    ]  # fmt: skip
    done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = json.loads(line[len("BENCH_JSON ") :])
            result["text"] = done.stdout
            return result
    raise SystemExit(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk_version = "not installed"
    if shutil.which("wrk"):
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        wrk_version = (wrk.stdout or wrk.stderr).splitlines()[0].split(" Copyright")[0]
    versions = ", ".join(
        f"{p} {metadata.version(p)}"
        for p in ("fastapi", "starlette", "pydantic", "uvicorn", "uvloop", "httptools", "asyncpg", "orjson")
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src", "migrations"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    ).stdout.splitlines()  # fmt: skip
    source = f"working tree at commit `{commit}`" + (
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
        "wrk": wrk_version,
        "commit": commit,
    }


def replace_section(results: Path, begin: str, end: str, section: str) -> None:
    """Re-read RESULTS.md now (other scripts write it too) and replace the section between the
    markers with `section` (which carries them), or append it; the rest is left alone."""
    text = results.read_text(encoding="utf-8") if results.exists() else ""
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    results.write_text(text, encoding="utf-8")


def run_cli(env: dict[str, str], *args: str) -> str:
    """`correspondence ARGS` with `env`; its stdout, or exit with what it printed."""
    done = subprocess.run(
        [venv_bin("correspondence"), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"correspondence {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip()
