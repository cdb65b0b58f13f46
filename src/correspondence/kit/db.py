"""PostgreSQL: the configured server, or an embedded one (pgserver) under the data directory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from correspondence.kit.outage import DatabaseUnavailable, is_database_unavailable

log = logging.getLogger("correspondence.db")

DB_NAME = "correspondence"
CONNECT_TIMEOUT_SECONDS = 10.0


def create_database_sql(name: str) -> str:
    """How the service's database is created: identifiers (URNs, organisation numbers, resource ids,
    statuses) compare byte by byte (LC_COLLATE "C") instead of through the locale's `strcoll`, which
    made every text key of a B-tree insert or probe cost more (bench/RESULTS.md: up to 1.9x for
    1 M URN index inserts with the cluster's C.UTF-8). Character classes stay the cluster's
    (LC_CTYPE of template0), so the inbox's word search still lowercases æ, ø and å. For ASCII
    identifiers, and for UTF-8 text under C.UTF-8, the order is the same as before."""
    return f"CREATE DATABASE \"{name}\" TEMPLATE template0 LC_COLLATE 'C'"


def embedded_server_url(data_dir: Path, database: str = DB_NAME) -> str:
    """Start (or join) the embedded PostgreSQL under data_dir and return a URL for `database`."""
    import warnings

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver  # imported lazily: only the embedded default needs it

    pgdata = (data_dir / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(pgdata)
    # "stop": the server stops when the last process using it (serve, worker, a CLI verb) exits.
    server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    if database != "postgres":
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
        if "1 row" not in exists:
            server.psql(create_database_sql(database) + ";")
    uri: str = server.get_uri(database)
    return uri


def _forget_dead_users(pgdata: Path) -> None:
    """pgserver stops the server when its last user exits; a user killed without cleanup stays
    listed and would keep it running forever, so drop pids that no longer exist."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    return database_url or embedded_server_url(data_dir)


def with_database(url: str, database: str) -> str:
    """The same server URL, pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset query on release: we keep no per-connection state."""


class FairPool(asyncpg.Pool):  # type: ignore[misc]
    """asyncpg's pool, handing connections out in arrival order.

    asyncpg waits for a free connection on an asyncio.Queue, where a request that arrives just as a
    connection comes back takes it before the ones already waiting (which queue again at the back).
    With more requests in flight than connections that starves some requests: search pages at 1 M
    rows answered p50 2.2 ms but p99 118 ms. A FIFO semaphore in front of the queue serves
    requests in the order they asked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turns = asyncio.Semaphore(kwargs["max_size"])
        self._held: set[int] = set()  # ids of the connections handed out through a turn

    async def _acquire(self, timeout: float | None) -> Any:
        try:
            if timeout is None:
                await self._turns.acquire()
            else:
                await asyncio.wait_for(self._turns.acquire(), timeout)
        except TimeoutError as exc:
            raise DatabaseUnavailable("timed out waiting for a database connection") from exc
        try:
            connection = await super()._acquire(timeout)
        except (OSError, TimeoutError) as exc:
            # Connecting failed (refused, unreachable, timed out): the database is unavailable, not
            # the request wrong. asyncpg already put the empty slot back; the next acquire connects.
            self._turns.release()
            raise DatabaseUnavailable(f"cannot connect to the database: {type(exc).__name__}") from exc
        except BaseException:
            self._turns.release()
            raise
        self._held.add(id(connection))
        return connection

    def acquire(self, *, timeout: float | None = None) -> Any:
        return _Acquire(self, timeout)

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:
        try:
            await super().release(connection, timeout=timeout)
        except Exception as exc:
            # Giving back a connection the server dropped must not fail the caller, whose work is
            # done by now: a request that committed must not be answered 503 for it.
            if not is_database_unavailable(exc):
                raise
            with contextlib.suppress(asyncpg.InterfaceError):
                connection.terminate()
        finally:
            if id(connection) in self._held:  # a foreign or repeated release gives no turn back
                self._held.discard(id(connection))
                self._turns.release()


class _Acquire(asyncpg.pool.PoolAcquireContext):  # type: ignore[misc]
    """A connection that failed because the server went away, or whose protocol state asyncpg
    no longer trusts, is terminated rather than handed out again: the next acquire connects anew."""

    __slots__ = ()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and self.connection is not None and _breaks_connection(exc):
            # InterfaceError: closed already, and so given back to the pool by asyncpg itself.
            with contextlib.suppress(asyncpg.InterfaceError):
                self.connection.terminate()
        await super().__aexit__(exc_type, exc, tb)


def _breaks_connection(exc: BaseException) -> bool:
    return is_database_unavailable(exc) or isinstance(exc, asyncpg.InternalClientError)


async def create_pool(url: str, size: int, *, generic_plans: bool = True) -> asyncpg.Pool:
    """`generic_plans`: plan each statement once (the API's pools). A worker's pool plans every
    batch for its own arrays instead: a generic plan cannot see how many ids `= ANY($1)` holds,
    and for a batch of thousands it chose a sequential scan that compared every row with every id
    (a 7,800-order `complete_orders` ran past the 60 s command timeout at 1 M rows; bench/RESULTS.md).
    Planning a batch statement costs little beside running it. Forced, not `auto`: after five runs
    `auto` settles on the generic plan whenever its (blind) estimate looks no worse."""
    plans = "force_generic_plan" if generic_plans else "force_custom_plan"
    pool = FairPool(
        url,
        # No floor: asyncpg would keep reconnecting it in the background during an outage, with a
        # stack trace per try. Connections open on demand and stay for max_inactive_connection_lifetime.
        min_size=0,
        max_size=size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        reset=_no_reset,
        # Plan each big statement once: planning the Initialize CTE costs more than running it,
        # and a custom plan at 500 recipients would hash the whole contact registry.
        server_settings={"plan_cache_mode": plans},
        command_timeout=60,
        # Connecting to an unreachable host fails after this many seconds (asyncpg's default is
        # 60), so requests are answered 503 while the database is away instead of hanging.
        timeout=CONNECT_TIMEOUT_SECONDS,
    )
    await pool
    try:
        await pool.fetchval("SELECT 1")  # fail at start-up, as before, when there is no database
    except BaseException:
        await pool.close()
        raise
    return pool


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """The caller owns the transaction: commit on success, roll back on any error."""
    async with pool.acquire() as conn, conn.transaction():
        yield conn


async def wait_for_database(url: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            conn = await asyncpg.connect(url)
            await conn.close()
            return
        except (OSError, asyncpg.PostgresError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"database not reachable: {exc}") from exc
            await asyncio.sleep(0.5)


Record = asyncpg.Record
Json = dict[str, Any]
