"""Bounded in-flight work: admit up to a limit, optionally queue a few more, refuse the
rest at once (load shedding), never pile up.

    limiter = InflightLimiter(256, refuse=lambda: Unavailable("Server overloaded", ...))

    if not limiter.try_acquire():      # non-blocking, no queue: shed now
        raise limiter.refusal()
    try:
        ...
    finally:
        limiter.release()

    async with limiter:                 # waits in the queue (if `queue` > 0), else refuses
        ...

The refusal is whatever `refuse()` builds (this module knows no domain errors): the API's
overload limit raises 503 "Server overloaded", an execution queue 429 "Execution queue full".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType


class InflightLimiter:
    """At most `limit` holders at once and `queue` more waiting for a slot (FIFO); beyond
    that, `acquire()` raises `refuse()` immediately. Not thread-safe (one event loop)."""

    def __init__(self, limit: int, *, refuse: Callable[[], BaseException], queue: int = 0) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.queue = max(0, queue)
        self._refuse = refuse
        self._running = 0
        self._waiters: asyncio.Queue[asyncio.Future[None]] | None = None
        self._waiting = 0
        self.refused = 0  # how many were turned away (for logs and benchmarks)

    @property
    def in_flight(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._waiting

    def refusal(self) -> BaseException:
        self.refused += 1
        return self._refuse()

    def try_acquire(self) -> bool:
        """Take a slot if one is free now (never queues)."""
        if self._running < self.limit and self._waiting == 0:
            self._running += 1
            return True
        return False

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue if it has room; else raise `refuse()`."""
        if self.try_acquire():
            return
        if self._waiting >= self.queue:
            raise self.refusal()
        if self._waiters is None:
            self._waiters = asyncio.Queue()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.put_nowait(future)
        self._waiting += 1
        try:
            await future  # release() hands its slot over: _running stays counted
        except BaseException:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed to us as we went away: pass it on
            raise
        finally:
            self._waiting -= 1

    def release(self) -> None:
        """Give the slot back, to the first waiter still waiting if any."""
        while self._waiters is not None and not self._waiters.empty():
            future = self._waiters.get_nowait()
            if not future.done():
                future.set_result(None)  # the slot passes on; the count is unchanged
                return
        self._running -= 1

    async def __aenter__(self) -> InflightLimiter:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
