"""Group commit for Initialize: the requests that arrive while one statement runs are written by
the next, together.

Most of PostgreSQL's work for a one-recipient Initialize is per statement, not per row: every table
the statement writes costs an executor node, a relation lock and an index descent whether it gets
one row or five hundred (bench/RESULTS.md), and every statement a commit and a round trip. So the
requests without an idempotency key or attachments go through `kit.batch.Batcher`: a request waits
until the statement holding its rows has committed (an answer still means the rows are durable),
and the requests that came meanwhile are written by one INSERT_INITIALIZE_MANY. When that statement
fails, each request of the group is written again on its own, so one request's bad value fails only
that request. An idle service writes a lone request at once, with the one-request statement."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import asyncpg

from correspondence.correspondence import repository as repo
from correspondence.kit.batch import Batcher

# Where each request's own values sit in INSERT_INITIALIZE's argument list, in the order
# INSERT_INITIALIZE_MANY takes them as arrays ($1 … $29).
_PER_REQUEST = (*range(9), *range(11, 22), *range(26, 35))
_IDS, _RECIPIENTS, _MAIN_OIDS, _REM_OIDS = 9, 10, 24, 25
_KEY, _ATTACHMENT_IDS, _PENDING = 22, 35, 37


# A request with more recipients than this already spreads its statement's cost over its rows, and
# goes on its own: one group at a time would put all bulk writing on one PostgreSQL backend (one
# core; measured: 100-recipient requests at 10.0 k/s grouped against 16.9 k/s on their own).
MAX_GROUPED_RECIPIENTS = 10


def groupable(args: list[Any]) -> bool:
    """Requests INSERT_INITIALIZE_MANY is worth writing together: few recipients, no idempotency
    key, no attachments."""
    return (
        args[_KEY] is None
        and not args[_ATTACHMENT_IDS]
        and not args[_PENDING]
        and len(args[_IDS]) <= MAX_GROUPED_RECIPIENTS
    )


class _Request:
    __slots__ = ("args", "error", "rows")

    def __init__(self, args: list[Any]) -> None:
        self.args = args
        self.rows: list[Any] = []
        self.error: BaseException | None = None


def many_args(requests: list[list[Any]]) -> list[Any]:
    """INSERT_INITIALIZE_MANY's arguments for these requests' INSERT_INITIALIZE argument lists."""
    columns: list[list[Any]] = [[args[i] for args in requests] for i in _PER_REQUEST]
    qn: list[int] = []
    ids: list[Any] = []
    recipients: list[str] = []
    main_oids: list[Any] = []
    rem_oids: list[Any] = []
    for n, args in enumerate(requests, start=1):
        qn.extend([n] * len(args[_IDS]))
        ids.extend(args[_IDS])
        recipients.extend(args[_RECIPIENTS])
        main_oids.extend(args[_MAIN_OIDS])
        rem_oids.extend(args[_REM_OIDS])
    return [*columns, qn, ids, recipients, main_oids, rem_oids]


class InitializeWriter:
    def __init__(self, pool: asyncpg.Pool, *, max_requests: int = 64) -> None:
        self._batcher: Batcher[asyncpg.Connection, _Request] = Batcher(
            pool.acquire, self._flush, max_items=max_requests
        )
        self.grouped = 0  # requests written together with others (for tests and benchmarks)

    async def write(self, args: list[Any]) -> list[Any]:
        """The rows INSERT_INITIALIZE would answer for this request, once they are committed."""
        request = _Request(args)
        await self._batcher.submit(request)
        if request.error is not None:
            raise request.error
        return request.rows

    async def _flush(self, conn: asyncpg.Connection, requests: list[_Request]) -> None:
        if len(requests) == 1:
            requests[0].rows = await repo.insert_initialize(conn, requests[0].args)
            return
        try:
            rows = await repo.insert_initialize_many(conn, many_args([r.args for r in requests]))
        except asyncpg.PostgresError:
            # Not the connection (that is raised to all): a value of one request. Each on its own.
            for request in requests:
                try:
                    request.rows = await repo.insert_initialize(conn, request.args)
                except asyncpg.PostgresError as exc:
                    request.error = exc
            return
        self.grouped += len(requests)
        by_request: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            by_request[row["n"]].append(row)
        for n, request in enumerate(requests, start=1):
            request.rows = by_request[n]
