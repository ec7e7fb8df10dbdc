"""A group-commit batch writer: a caller can wait until its item is stored, and concurrent
callers share one write.

Leader-style group commit: a flush starts as soon as an item waits and none is running;
items arriving while it runs ride the next flush, which starts the moment this one ends;
each flush writes everything waiting as one batch (one `sink` call) and releases all its
waiting callers together. An idle writer therefore adds one small write per call; a busy
one batches as many calls as arrived during the previous write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger("chatplane.batch")

T = TypeVar("T")


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a batch's outcome as seen (a waiter may have gone away)."""
    if not future.cancelled():
        future.exception()


class BatchWriter(Generic[T]):
    """Hands items to `sink` in batches, one flush at a time (see the module docstring).

    `write(item)` returns once the item is stored (and raises if its batch failed: the
    item is then kept and retried, never dropped); `record(item)` does not wait.
    `flush()` waits until everything recorded so far is stored; `aclose()` flushes and
    refuses further items.
    """

    def __init__(
        self,
        sink: Callable[[list[T]], Awaitable[None]],
        *,
        name: str,
        retry_delay: float = 1.0,
    ) -> None:
        self._sink = sink
        self._name = name
        self._retry_delay = retry_delay
        self._pending: list[T] = []
        # Completes when the batch holding the pending items is stored (made on demand).
        self._next: asyncio.Future[None] | None = None
        # The batch being written now, and its completion (None when idle).
        self._current: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0  # flushes done (for tests and benchmarks)
        self.rows = 0  # items stored

    def record(self, item: T) -> None:
        """Queue `item`; a flush starts now unless one is running. Does not wait."""
        if self._closed:
            raise RuntimeError(f"{self._name} is closed")
        self._pending.append(item)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def write(self, item: T) -> None:
        """Queue `item` and return once it is stored."""
        self.record(item)
        # Shielded: a caller that goes away does not cancel the batch of the others.
        await asyncio.shield(self._next_done())

    def _next_done(self) -> asyncio.Future[None]:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._next.add_done_callback(_retrieve)
        return self._next

    async def flush(self) -> None:
        """Wait until everything recorded so far is stored."""
        if self._pending:
            await asyncio.shield(self._next_done())
        elif self._current is not None:
            await asyncio.shield(self._current)

    async def _run(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                done, self._next = self._next, None
                current = done or asyncio.get_running_loop().create_future()
                if done is None:
                    current.add_done_callback(_retrieve)
                self._current = current
                try:
                    await self._sink(batch)
                except Exception as exc:
                    self._pending[:0] = batch  # kept for the next attempt, never dropped
                    self._current = None
                    current.set_exception(exc)
                    log.exception("%s: write failed; %d kept for retry", self._name, len(batch))
                    if self._closed:
                        return  # aclose() tries once more and reports
                    await asyncio.sleep(self._retry_delay)
                    continue
                except BaseException:  # cancelled mid-write: kept, waiters released
                    self._pending[:0] = batch
                    self._current = None
                    current.cancel()
                    raise
                self._current = None
                self.batches += 1
                self.rows += len(batch)
                current.set_result(None)
        finally:
            self._task = None

    async def aclose(self) -> None:
        """Refuse new items and wait until the queued ones are stored (a clean shutdown
        loses nothing); raises if the last attempt failed."""
        self._closed = True
        task = self._task
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
        if self._pending:  # the last flush failed: one more try, its error surfaces
            batch, self._pending = self._pending, []
            await self._sink(batch)
