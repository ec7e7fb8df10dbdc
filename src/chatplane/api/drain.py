"""Graceful shutdown of streams: wait for them during the grace period, then end the
ones still running with an in-band message instead of cutting them silently.

The interceptor registers every streaming call's task. `Drain.run(grace)` waits until no
stream is left or the grace period is over, then marks the remaining tasks shut and
cancels those not handing a message to grpc at that moment (a cancellation inside grpc's
send would end the call with CANCELLED instead); a task that was sending sees the mark
as soon as its message is out. The interceptor recognises a shut task (`was_shut`) and,
for a stream already
started, sends the method's last message (for chat: an `error` event "server shutting
down", retryable) and ends the call normally. The service below has already seen the
cancellation and recorded the call as `cancelled` with the tokens it delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger("chatplane.server")


class Drain:
    def __init__(self) -> None:
        self._active: set[asyncio.Task[object]] = set()
        self._shut: set[asyncio.Task[object]] = set()
        self._sending: set[asyncio.Task[object]] = set()  # inside grpc's send right now
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> asyncio.Task[object] | None:
        task = asyncio.current_task()
        if task is not None:
            self._active.add(task)
            self._idle.clear()
        return task

    def leave(self, task: asyncio.Task[object] | None) -> None:
        if task is None:
            return
        self._active.discard(task)
        self._shut.discard(task)
        self._sending.discard(task)
        if not self._active:
            self._idle.set()

    def sending(self, task: asyncio.Task[object] | None, now: bool) -> None:
        """Around each message handed to grpc: such a task is not cancelled, only marked."""
        if task is not None:
            if now:
                self._sending.add(task)
            else:
                self._sending.discard(task)

    def was_shut(self, task: asyncio.Task[object] | None) -> bool:
        """Whether `task` was cancelled by the end of the grace period."""
        return task is not None and task in self._shut

    @property
    def active(self) -> int:
        return len(self._active)

    async def run(self, grace: float) -> int:
        """Wait up to `grace` seconds for the streams to end, then end the rest; returns
        how many had to be ended."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        left = [t for t in self._active if not t.done()]
        if left:
            log.info(
                "grace period over: ending %d stream(s) with 'server shutting down'", len(left)
            )
        for task in left:
            self._shut.add(task)
            if task not in self._sending:
                task.cancel()
        return len(left)
