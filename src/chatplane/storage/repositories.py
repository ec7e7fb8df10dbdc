"""Repositories: typed queries over one AsyncSession. They never commit; services do.

Every method on tenant-owned data takes the tenant id and filters on it, so a row of
another tenant is simply not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chatplane.storage.models import ApiKey, JwtClient, Project, Tenant, UsageRecord


class Repository:
    """Base: holds the session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session


class TenantRepository(Repository):
    async def get(self, tenant_id: str) -> Tenant | None:
        return await self.session.get(Tenant, tenant_id)

    async def first(self) -> Tenant | None:
        result = await self.session.exec(select(Tenant).order_by(col(Tenant.created_at)).limit(1))
        return result.first()

    def add(self, tenant: Tenant) -> None:
        self.session.add(tenant)


class ApiKeyRepository(Repository):
    def add(self, key: ApiKey) -> None:
        self.session.add(key)

    async def get(self, tenant_id: str, key_id: str) -> ApiKey | None:
        result = await self.session.exec(
            select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.id == key_id)
        )
        return result.first()

    async def by_hash(self, secret_hash: str) -> ApiKey | None:
        result = await self.session.exec(select(ApiKey).where(ApiKey.secret_hash == secret_hash))
        return result.first()

    async def list(self, tenant_id: str) -> Sequence[ApiKey]:
        result = await self.session.exec(
            select(ApiKey)
            .where(ApiKey.tenant_id == tenant_id)
            .order_by(col(ApiKey.created_at).desc(), col(ApiKey.id).desc())
        )
        return result.all()


class JwtClientRepository(Repository):
    def add(self, client: JwtClient) -> None:
        self.session.add(client)

    async def get(self, app_id: str) -> JwtClient | None:
        return await self.session.get(JwtClient, app_id)


class ProjectRepository(Repository):
    def add(self, project: Project) -> None:
        self.session.add(project)

    async def get(self, tenant_id: str, project_id: str) -> Project | None:
        result = await self.session.exec(
            select(Project).where(Project.tenant_id == tenant_id, Project.id == project_id)
        )
        return result.first()

    async def get_with_tenant(
        self, tenant_id: str, project_id: str
    ) -> tuple[Project, Tenant] | None:
        result = await self.session.exec(
            select(Project, Tenant)
            .join(Tenant, col(Tenant.id) == col(Project.tenant_id))
            .where(Project.tenant_id == tenant_id, Project.id == project_id)
        )
        row = result.first()
        return None if row is None else (row[0], row[1])

    async def page(
        self, tenant_id: str, *, limit: int, offset: int
    ) -> tuple[Sequence[Project], int]:
        rows = await self.session.exec(
            select(Project)
            .where(Project.tenant_id == tenant_id)
            .order_by(col(Project.created_at).desc(), col(Project.id).desc())
            .limit(limit)
            .offset(offset)
        )
        total = await self.session.exec(
            select(func.count()).select_from(Project).where(Project.tenant_id == tenant_id)
        )
        return rows.all(), int(total.one())

    async def delete(self, project: Project) -> None:
        await self.session.delete(project)


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Aggregates over usage records (one model, or all)."""

    model: str
    provider: str
    total_tokens: int
    total_cost: float
    request_count: int
    avg_latency: float


class UsageRepository(Repository):
    async def insert_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Bulk insert (one executemany), bypassing per-object ORM work."""
        conn = await self.session.connection()
        await conn.execute(sa.insert(UsageRecord), list(rows))

    def _filtered(
        self, tenant_id: str, project_id: str, start: datetime | None, end: datetime | None
    ) -> list[sa.ColumnElement[bool]]:
        conditions: list[sa.ColumnElement[bool]] = [
            col(UsageRecord.tenant_id) == tenant_id,
            col(UsageRecord.project_id) == project_id,
        ]
        if start is not None:
            conditions.append(col(UsageRecord.created_at) >= start)
        if end is not None:
            conditions.append(col(UsageRecord.created_at) < end)
        return conditions

    async def totals(
        self,
        tenant_id: str,
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
        conditions = self._filtered(tenant_id, project_id, start, end)
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
            rows = (await self.session.execute(stmt)).all()
            return [
                UsageTotals(m, p, int(t), float(c), int(n), float(lat))
                for m, p, t, c, n, lat in rows
            ]
        total_stmt = sa.select(tokens, cost, func.count(), latency).where(*conditions)
        t, c, n, lat = (await self.session.execute(total_stmt)).one()
        return [UsageTotals("", "", int(t), float(c), int(n), float(lat))]
