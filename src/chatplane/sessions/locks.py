"""Turns on one session run one after the other.

Within a process an asyncio lock per session orders them. With PostgreSQL a session-level
advisory lock, held on its own connection for the length of the turn, orders them across
processes and replicas too (a process that dies drops its connection, and with it the
lock). With SQLite the turn's final write is still guarded by the session's version, so a
second process cannot commit over a turn it did not see (it fails with "Session busy").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa

from chatplane.storage.db import Database

_LOCK = sa.text("SELECT pg_advisory_lock(hashtextextended(:k, 0))")
_UNLOCK = sa.text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))")


class TurnLocks:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._postgres = db.engine.dialect.name == "postgresql"
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}
        # Turns that ended in this process (any session): `mark()` before a read, `hold(...,
        # since=mark)` tells whether one ended in between.
        self._ended = 0

    def mark(self) -> int:
        return self._ended

    @asynccontextmanager
    async def hold(self, session_id: str, since: int | None = None) -> AsyncIterator[bool]:
        """The session's turn lock; yields whether the session may have changed since the
        caller's read at `mark()` == `since`: a turn of this process held or awaited the
        lock then, or ended since, or another process may have (PostgreSQL's lock orders
        replicas: a read made before it is old). Otherwise that read is as fresh as one
        made now (with SQLite, another process's turn is caught by the version check)."""
        lock, users = self._local.get(session_id) or (asyncio.Lock(), 0)
        self._local[session_id] = (lock, users + 1)
        try:
            async with lock:
                if not self._postgres:
                    try:
                        yield users > 0 or since != self._ended
                    finally:
                        self._ended += 1
                    return
                async with self._db.engine.connect() as conn:
                    key = {"k": session_id}
                    await conn.execute(_LOCK, key)
                    try:
                        yield True
                    finally:
                        self._ended += 1
                        await conn.execute(_UNLOCK, key)
        finally:
            lock, users = self._local[session_id]
            if users <= 1:
                del self._local[session_id]
            else:
                self._local[session_id] = (lock, users - 1)
