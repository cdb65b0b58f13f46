"""Group commit in the application: many requests' small writes in one statement.

A request hands its item to a `Batcher` and waits until the statement that wrote it has committed,
so an answer still means the write is durable (synchronous_commit stays on). One flush runs at a
time: the items that arrive while it runs go together in the next one. Under load that turns N
single-row INSERTs (N round trips, N commits, N WAL flushes) into one; an idle service writes a lone
item at once, with no timer in the way.

When the flush fails, every request of that batch gets the error, as each would have on its own.
A request that gives up waiting (cancelled) leaves its item in the batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger("correspondence")


class Batcher(Generic[T]):
    def __init__(self, flush: Callable[[list[T]], Awaitable[None]], *, max_items: int = 500) -> None:
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
            while self._waiting:
                batch = self._waiting[: self._max_items]
                del self._waiting[: self._max_items]
                try:
                    await self._flush([item for item, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise  # cancelled (shutdown): the items still waiting are failed below
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._task = None
            for _, future in self._waiting:
                if not future.done():
                    future.set_exception(RuntimeError("the batch writer stopped"))
            self._waiting.clear()
