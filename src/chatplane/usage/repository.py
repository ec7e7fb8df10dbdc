"""Usage records in storage: bulk inserts and exact aggregates."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, func

from chatplane.storage.db import sqlite_pragmas
from chatplane.storage.models import UsageRecord
from chatplane.storage.repository import Repository, TenantScopedRepository
from chatplane.usage.types import UsageRow, UsageTotals


class UsageInserts(Repository):
    """Rows of many tenants at once (each row carries its tenant id)."""

    async def insert_rows(self, rows: Sequence[UsageRow]) -> None:
        """Bulk insert (one executemany), bypassing per-object ORM work."""
        conn = await self.uow.connection()
        await conn.execute(sa.insert(UsageRecord), list(rows))


class SqliteUsageInserts:
    """Usage rows into SQLite through one plain sqlite3 connection on one thread: a batch is
    one thread hop (BEGIN IMMEDIATE, executemany, COMMIT: about 0.1 ms for a row) where the
    async engine takes several (about 1 ms). The hot path waits for this write (group
    commit), so the difference is visible per call. Values are converted by the engine's
    own bind processors, so the rows are the ones the ORM would have written."""

    def __init__(self, engine: AsyncEngine) -> None:
        url = engine.url
        self._path = url.database or ""
        dialect = engine.dialect
        table = UsageRecord.__table__  # type: ignore[attr-defined]
        columns = [c.name for c in table.columns]
        # (name, bind processor or None) per column, in the INSERT's order.
        self._pairs = [
            (c.name, c.type.dialect_impl(dialect).bind_processor(dialect)) for c in table.columns
        ]
        names = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        self._sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="usage-sqlite")
        self._conn: sqlite3.Connection | None = None

    @staticmethod
    def supports(engine: AsyncEngine) -> bool:
        url = engine.url
        return url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            sqlite_pragmas(conn, None)  # the engine's: WAL, NORMAL sync, busy timeout
            self._conn = conn
        return self._conn

    def _insert(self, rows: Sequence[UsageRow]) -> None:
        conn = self._connect()
        pairs = self._pairs
        values = [
            tuple(p(row.get(name)) if p else row.get(name) for name, p in pairs) for row in rows
        ]
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(self._sql, values)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def insert_rows(self, rows: Sequence[UsageRow]) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._insert, list(rows))

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)


class UsageRepository(TenantScopedRepository[UsageRecord]):
    model = UsageRecord

    def _filtered(
        self, project_id: str, start: datetime | None, end: datetime | None
    ) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = [
            self._owned(),
            col(UsageRecord.project_id) == project_id,
        ]
        if start is not None:
            conditions.append(col(UsageRecord.created_at) >= start)
        if end is not None:
            conditions.append(col(UsageRecord.created_at) < end)
        return conditions

    async def totals(
        self,
        project_id: str,
        *,
        start: datetime | None,
        end: datetime | None,
        by_model: bool,
    ) -> list[UsageTotals]:
        """Exact aggregates in SQL, served by the (tenant, project, created_at) index."""
        tokens = func.coalesce(
            func.sum(col(UsageRecord.input_tokens) + col(UsageRecord.output_tokens)), 0
        )
        cost = func.coalesce(func.sum(col(UsageRecord.cost)), 0.0)
        latency = func.coalesce(func.avg(col(UsageRecord.latency_ms)), 0.0)
        conditions = self._filtered(project_id, start, end)
        if by_model:
            stmt = (
                sa.select(
                    col(UsageRecord.model),
                    col(UsageRecord.provider),
                    tokens,
                    cost,
                    func.count(),
                    latency,
                )
                .where(*conditions)
                .group_by(col(UsageRecord.model), col(UsageRecord.provider))
                .order_by(tokens.desc(), col(UsageRecord.model))
            )
            rows = (await self.uow.execute(stmt)).all()
            return [
                UsageTotals(m, p, int(t), float(c), int(n), float(lat))
                for m, p, t, c, n, lat in rows
            ]
        total_stmt = sa.select(tokens, cost, func.count(), latency).where(*conditions)
        t, c, n, lat = (await self.uow.execute(total_stmt)).one()
        return [UsageTotals("", "", int(t), float(c), int(n), float(lat))]
