"""Processes on one machine: the job worker process, and `serve --workers N` (N API processes on
one port, one job worker beside them).

`serve --workers N` with N > 1: the parent resolves the database once (starting the embedded
PostgreSQL when no URL is configured, so exactly one server runs and the parent stops it when it
exits), applies migrations, binds the port and starts N API processes through uvicorn's process
manager; they receive the database URL in CORRESPONDENCE_DATABASE_URL and run no job worker. The
parent itself runs the one in-process job worker (unless --no-worker), on its own thread and
event loop, so N does not multiply pollers and database connections. On SIGTERM (or SIGINT) the
parent tells its worker to stop and sends SIGTERM to each API process: each stops accepting and
finishes its in-flight requests (at most 10 s); the worker finishes its running batch (at most
`worker_shutdown_seconds`) and releases the rest. The parent waits for all of them, then exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from socket import socket

from fastapi import FastAPI
from uvicorn import Config
from uvicorn.supervisors import Multiprocess

from correspondence.app import build_worker, create_app
from correspondence.auth.tokens import TokenValidator
from correspondence.config import Settings, get_settings
from correspondence.kit import logs
from correspondence.kit.db import create_pool
from correspondence.kit.jobs import Worker
from correspondence.services import Services

log = logging.getLogger("correspondence")

# uvicorn's grace for in-flight requests after SIGTERM, in every API process.
GRACEFUL_SHUTDOWN_SECONDS = 10


async def run_worker(settings: Settings, database_url: str, *, started: Callable[[Worker], None]) -> None:
    """A job worker with its own pool and adapters, until its `stop()` is called (`started` gets it
    as soon as it exists, to wire that up)."""
    # Custom plans: this pool runs nothing but the worker's batch statements (kit/db.create_pool).
    pool = await create_pool(database_url, settings.db_pool_size, generic_plans=False)
    services = Services(settings, pool, TokenValidator(settings, None), None)
    try:
        await services.open_adapters()
        worker = build_worker(services)
        started(worker)
        await worker.run()
    finally:
        await services.close_messaging()
        await services.close_webhooks()
        await pool.close()


class WorkerThread:
    """The parent's job worker: its own thread and event loop beside uvicorn's process manager,
    which owns the main thread and its signals."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        import uvloop

        self._settings = settings
        self._url = database_url
        self._loop = uvloop.new_event_loop()
        self._worker: Worker | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._main, name="correspondence-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(run_worker(self._settings, self._url, started=self._started))
        except Exception:
            log.exception("the job worker stopped with an error")
        finally:
            self._loop.close()

    def _started(self, worker: Worker) -> None:
        self._worker = worker
        if self._stopping:
            worker.stop()

    def _stop_in_loop(self) -> None:
        self._stopping = True
        if self._worker is not None:
            self._worker.stop()

    def stop(self) -> None:
        """From any thread: the worker finishes or releases its jobs, then run_worker returns."""
        with contextlib.suppress(RuntimeError):  # the loop has ended already
            self._loop.call_soon_threadsafe(self._stop_in_loop)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning(
                "the job worker did not stop within %s s; its jobs are taken again after their lease", timeout
            )


class _Supervisor(Multiprocess):
    """uvicorn's process manager, telling the parent's worker to stop when it stops the API
    processes, so both shut down at the same time."""

    def __init__(self, config: Config, sockets: list[socket], on_exit: Callable[[], None]) -> None:
        super().__init__(config, sockets)
        self._on_exit = on_exit

    def terminate_all(self) -> None:
        self._on_exit()
        super().terminate_all()


def serve_processes(settings: Settings, database_url: str, *, processes: int, run_worker: bool) -> None:
    """N API processes on settings.host:settings.port and, in this process, one job worker."""
    # The API processes read their settings from the environment, like every command does.
    os.environ["CORRESPONDENCE_DATABASE_URL"] = database_url
    os.environ["CORRESPONDENCE_HOST"] = settings.host
    os.environ["CORRESPONDENCE_PORT"] = str(settings.port)
    config = Config(
        "correspondence.processes:api_process_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=processes,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        log_level=settings.log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    sock = config.bind_socket()
    worker = WorkerThread(settings, database_url) if run_worker else None
    if worker is not None:
        worker.start()
    try:
        _Supervisor(config, [sock], on_exit=worker.stop if worker is not None else lambda: None).run()
    finally:
        if worker is not None:
            worker.stop()
            worker.join(settings.worker_shutdown_seconds + 15)
        sock.close()


def api_process_app() -> FastAPI:
    """The app of one API process started by serve_processes (uvicorn calls this factory)."""
    settings = get_settings()
    logs.configure(settings.log_level)
    if settings.database_url is None:  # started by hand, not by serve_processes
        raise RuntimeError("an API process needs CORRESPONDENCE_DATABASE_URL (run `correspondence serve`)")
    return create_app(settings, settings.database_url, run_worker=False)


def install_stop_signals(worker: Worker) -> None:
    """SIGTERM and SIGINT stop the worker gracefully (call inside its running loop)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stop)
