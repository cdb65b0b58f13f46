"""Database outages: recognise them, answer 503 with Retry-After, and let background loops wait.

While PostgreSQL restarts or the connection drops, a request can neither commit nor be refused
for a reason of its own: the client is told to retry (503). A write whose COMMIT was sent when the
connection broke has an unknown outcome; it is answered 503 as well, and a retry with the same
`idempotentKey` either replays the committed answer or creates it once (DESIGN decision 2).

Recognition is deliberately narrow: only errors that say "the server cannot be reached or went
away" count. Everything else (a bad statement, a constraint, a bug) stays a 500.
"""

from __future__ import annotations

import logging
import time

import asyncpg
from starlette.responses import Response

from correspondence.kit.errors import problem_response

# Long enough for a PostgreSQL restart or fail-over to finish, short enough to keep clients going.
RETRY_AFTER_SECONDS = 3
UNAVAILABLE_DETAIL = (
    "The service is temporarily unavailable: its database does not answer. Retry the request."
)


class DatabaseUnavailable(Exception):
    """A connection to the database could not be made or handed out (refused, unreachable, timed
    out); raised by kit.db's pool in place of the socket error or timeout."""


_GONE: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    asyncpg.PostgresConnectionError,  # class 08: connection does not exist / failure / rejected
    asyncpg.AdminShutdownError,  # 57P01: terminating connection due to administrator command
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.CannotConnectNowError,  # 57P03: the database system is starting up / shutting down
    asyncpg.TooManyConnectionsError,  # 53300: the server takes no more connections right now
)
# 08P01 is a malformed message from us, a bug, whatever its SQLSTATE class says.
_NOT_GONE: tuple[type[BaseException], ...] = (asyncpg.ProtocolViolationError,)
# asyncpg's InterfaceError is mostly misuse (a bug); these messages mean the connection is gone.
_CLOSED = ("connection is closed", "the underlying connection is closed", "pool is closing", "pool is closed")


# An idle connection that receives the server's FATAL "terminating connection" (a fast shutdown,
# pg_terminate_backend) is left consuming that error (protocol state 2) until the socket's end is
# read; a query started in between fails with this instead of "connection is closed".
_ENDING = "another operation (2) is in progress"


def is_database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, _GONE):
        return not isinstance(exc, _NOT_GONE)
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc)
        return any(marker in text for marker in _CLOSED)
    if isinstance(exc, asyncpg.InternalClientError):
        return _ENDING in str(exc)
    return False


def unavailable_response(trace_id: str) -> Response:
    return problem_response(
        503, UNAVAILABLE_DETAIL, trace_id, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


def describe(exc: BaseException) -> str:
    """The error's type and first line for a log line (logs are for operators, not for callers)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class RequestOutages:
    """At most one warning per `every` seconds while requests meet an unavailable database, not a
    stack trace per request (the access log already has one line per 503)."""

    def __init__(self, logger: logging.Logger, every: float = 10.0) -> None:
        self._log = logger
        self._every = every
        self._last = float("-inf")
        self._count = 0

    def note(self, exc: BaseException, method: str, path: str) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last >= self._every:
            self._log.warning(
                "database unavailable, answering 503 (%s requests so far; latest %s %s: %s)",
                self._count,
                method,
                path,
                describe(exc),
            )
            self._last = now


class Outage:
    """A background loop's view of an outage: one warning when the database goes away, one line
    when it is back, and a pause that doubles from `first` to `longest` seconds in between."""

    def __init__(
        self, name: str, logger: logging.Logger, *, first: float = 0.5, longest: float = 5.0
    ) -> None:
        self._name = name
        self._log = logger
        self._first = first
        self._longest = longest
        self._since: float | None = None
        self._pause = first

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> float:
        """Seconds to wait before the next try."""
        if self._since is None:
            self._since = time.monotonic()
            self._pause = self._first
            self._log.warning(
                "%s: database unavailable (%s); retrying until it is back", self._name, describe(exc)
            )
        else:
            self._pause = min(self._longest, self._pause * 2)
        return self._pause

    def succeeded(self) -> None:
        if self._since is not None:
            self._log.warning("%s: database is back after %.1f s", self._name, time.monotonic() - self._since)
            self._since = None
