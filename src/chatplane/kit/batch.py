"""A buffered batch writer: items recorded without awaiting, stored in batches by one task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger("chatplane.batch")

T = TypeVar("T")


class BatchWriter(Generic[T]):
    """Buffers items and hands them to `sink` in batches from one background task.

    `record()` never awaits, so no caller waits on a round trip and callers do not
    serialize behind a lock; `flush()` waits until everything recorded so far is stored,
    and `aclose()` flushes before returning (a clean shutdown loses nothing). A failed
    batch is kept for the next attempt.
    """

    def __init__(
        self,
        sink: Callable[[list[T]], Awaitable[None]],
        *,
        name: str,
        batch_size: int = 200,
        interval: float = 0.25,
    ) -> None:
        self._sink = sink
        self._name = name
        self._batch_size = batch_size
        self._interval = interval
        self._pending: list[T] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one writer at a time; record() never takes it
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    def record(self, item: T) -> None:
        if self._closed:
            raise RuntimeError(f"{self._name} is closed")
        self._pending.append(item)
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    async def flush(self) -> None:
        async with self._lock:
            while self._pending:
                limit = self._batch_size * 5
                batch, self._pending = self._pending[:limit], self._pending[limit:]
                try:
                    await self._sink(batch)
                except Exception:
                    self._pending[:0] = batch  # kept for the next attempt, never dropped
                    raise

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("%s: flush failed; %d kept for retry", self._name, len(self._pending))
                await asyncio.sleep(1.0)

    async def aclose(self) -> None:
        """Stop the loop without cancelling a flush midway (a cancelled commit could lose
        or duplicate a batch), then store whatever is left."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
