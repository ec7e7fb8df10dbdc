"""Usage records in storage: bulk inserts and exact aggregates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, func

from chatplane.storage.models import UsageRecord
from chatplane.storage.repository import Repository, TenantScopedRepository
from chatplane.usage.types import UsageRow, UsageTotals


class UsageInserts(Repository):
    """Rows of many tenants at once (each row carries its tenant id)."""

    async def insert_rows(self, rows: Sequence[UsageRow]) -> None:
        """Bulk insert (one executemany), bypassing per-object ORM work."""
        conn = await self.uow.connection()
        await conn.execute(sa.insert(UsageRecord), list(rows))


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
