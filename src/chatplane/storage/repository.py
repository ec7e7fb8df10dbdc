"""Repository bases: typed queries over one unit of work. They never commit.

`TenantScopedRepository[Model]` writes the tenant filter once: every statement it builds
is restricted to its tenant, so another tenant's row is simply not found (404).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

import sqlalchemy as sa
from sqlmodel import SQLModel, col, func, select
from sqlmodel.sql.expression import SelectOfScalar

from chatplane.storage.db import UnitOfWork

M = TypeVar("M", bound=SQLModel)


class Repository:
    """Base: holds the unit of work."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow


class TenantScopedRepository(Repository, Generic[M]):
    """Queries on a tenant-owned table, always filtered by `tenant_id`."""

    model: ClassVar[type[Any]]

    def __init__(self, uow: UnitOfWork, tenant_id: str) -> None:
        super().__init__(uow)
        self.tenant_id = tenant_id

    def _owned(self) -> sa.ColumnElement[bool]:
        return col(self.model.tenant_id) == self.tenant_id

    def select(self) -> SelectOfScalar[M]:
        """`SELECT model WHERE tenant_id = :tenant`, to refine further."""
        stmt: SelectOfScalar[M] = select(self.model).where(self._owned())
        return stmt

    async def get(self, row_id: str) -> M | None:
        result = await self.uow.exec(self.select().where(col(self.model.id) == row_id))
        return result.first()

    def add(self, row: M) -> None:
        if getattr(row, "tenant_id", None) != self.tenant_id:
            raise ValueError("row belongs to another tenant")
        self.uow.add(row)

    async def delete(self, row: M) -> None:
        await self.uow.delete(row)

    async def page(self, *, limit: int, offset: int) -> tuple[Sequence[M], int]:
        """Newest first (created_at, then id), and the total count."""
        rows = await self.uow.exec(
            self.select()
            .order_by(col(self.model.created_at).desc(), col(self.model.id).desc())
            .limit(limit)
            .offset(offset)
        )
        total = await self.uow.exec(
            select(func.count()).select_from(self.model).where(self._owned())
        )
        return rows.all(), int(total.one())
