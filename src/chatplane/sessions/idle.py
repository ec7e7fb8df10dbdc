"""Ends sessions idle longer than the configured timeout.

A periodic `UPDATE ... WHERE status = 'active' AND last_activity_at < cutoff` (indexed
on status, last_activity_at): it keeps no state of its own, so a restart loses nothing
(the first sweep after it catches up), and several server processes may run it at once
(the update is idempotent). Idle sessions end with outcome `dropOff` unless one was set,
and end reason `idle`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from chatplane.kit.clock import utcnow
from chatplane.sessions.repository import IdleSessions
from chatplane.storage.db import Database

log = logging.getLogger("chatplane.sessions")


class IdleSweeper:
    def __init__(
        self, db: Database, *, idle_minutes: float, interval_seconds: float = 60.0
    ) -> None:
        self._db = db
        self._idle = timedelta(minutes=idle_minutes)
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._idle > timedelta(0)

    async def sweep(self, now: datetime | None = None) -> int:
        """End the sessions idle at `now`; returns how many."""
        now = now or utcnow()
        async with self._db.uow() as uow:
            return await IdleSessions(uow).end_idle(now - self._idle, now)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="chatplane-idle-sessions")

    async def _run(self) -> None:
        while True:
            try:
                ended = await self.sweep()
                if ended:
                    log.info("ended %d idle session(s)", ended)
            except Exception:  # the next sweep tries again
                log.exception("idle session sweep failed")
            await asyncio.sleep(self._interval)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
