"""Group commit in the application: many requests' small writes in one statement.

A request hands its item to a `Batcher` and waits until the statement that wrote it has committed,
so an answer still means the write is durable (synchronous_commit stays on). One flush runs at a
time: the items that arrive while it runs go together in the next one. Under load that turns N
single-row INSERTs (N round trips, N commits, N WAL flushes) into one; an idle service writes a lone
item at once, with no timer in the way.

The flushes run in a session (a pooled connection) that is kept while items keep coming, so a batch
does not queue for a connection behind the requests that wait for it; it is given back as soon as
nothing is waiting. When a flush fails, every request of that batch gets the error, as each would
have on its own, and the session is closed (the next batch opens another). A request that gives up
waiting (cancelled) leaves its item in the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, TypeVar

T = TypeVar("T")
S = TypeVar("S")


class Batcher(Generic[S, T]):
    def __init__(
        self,
        session: Callable[[], AbstractAsyncContextManager[S]],
        flush: Callable[[S, list[T]], Awaitable[None]],
        *,
        max_items: int = 500,
    ) -> None:
        self._session = session
        self._flush = flush
        self._max_items = max_items
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Returns when the batch holding `item` has been written; raises what writing it raised."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        try:
            while self._waiting:  # items that came while the last session was being given back
                await self._run_session()
        finally:
            self._task = None
            # Only left when cancelled (shutdown): nothing will write these.
            for _, future in self._waiting:
                if not future.done():
                    future.set_exception(RuntimeError("the batch writer stopped"))
            self._waiting.clear()

    async def _run_session(self) -> None:
        opened: AbstractAsyncContextManager[S] | None = None
        session: Any = None
        try:
            while self._waiting:
                batch = self._waiting[: self._max_items]
                del self._waiting[: self._max_items]
                try:
                    if opened is None:
                        candidate = self._session()
                        session = await candidate.__aenter__()
                        opened = candidate
                    await self._flush(session, [item for item, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if opened is not None:
                        closing, opened = opened, None
                        await closing.__aexit__(type(exc), exc, exc.__traceback__)
                    if not isinstance(exc, Exception):
                        raise
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            if opened is not None:
                await opened.__aexit__(None, None, None)
