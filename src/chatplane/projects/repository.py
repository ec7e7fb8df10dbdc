"""Projects in storage."""

from __future__ import annotations

from sqlmodel import col, select

from chatplane.storage.models import Project, Tenant
from chatplane.storage.repository import TenantScopedRepository


class ProjectRepository(TenantScopedRepository[Project]):
    model = Project

    async def get_with_tenant(self, project_id: str) -> tuple[Project, Tenant] | None:
        """The project and its tenant in one query (the chat path's settings)."""
        result = await self.uow.exec(
            select(Project, Tenant)
            .join(Tenant, col(Tenant.id) == col(Project.tenant_id))
            .where(self._owned(), Project.id == project_id)
        )
        row = result.first()
        return None if row is None else (row[0], row[1])
