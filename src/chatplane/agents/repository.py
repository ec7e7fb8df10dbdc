"""Agents and deployments in storage."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, func, select

from chatplane.agents.types import ACTIVE, DRAINING
from chatplane.storage.models import Agent, Deployment, ImportedTool
from chatplane.storage.repository import TenantScopedRepository


class AgentRepository(TenantScopedRepository[Agent]):
    model = Agent

    async def by_name(self, project_id: str, name: str) -> Agent | None:
        result = await self.uow.exec(
            self.select().where(col(Agent.project_id) == project_id, col(Agent.name) == name)
        )
        return result.first()

    async def in_project(self, project_id: str) -> Sequence[Agent]:
        """Every agent of the project, sorted by name."""
        result = await self.uow.exec(
            self.select().where(col(Agent.project_id) == project_id).order_by(col(Agent.name))
        )
        return result.all()

    async def names(self, project_id: str) -> set[str]:
        result = await self.uow.exec(
            select(Agent.name).where(self._owned(), col(Agent.project_id) == project_id)
        )
        return set(result.all())


class DeploymentRepository(TenantScopedRepository[Deployment]):
    model = Deployment

    async def in_project(self, project_id: str, deployment_id: str) -> Deployment | None:
        result = await self.uow.exec(
            self.select().where(
                col(Deployment.id) == deployment_id, col(Deployment.project_id) == project_id
            )
        )
        return result.first()

    async def active(self, project_id: str, environment: str) -> Deployment | None:
        result = await self.uow.exec(
            self.select()
            .where(
                col(Deployment.project_id) == project_id,
                col(Deployment.environment) == environment,
                col(Deployment.status) == ACTIVE,
            )
            .order_by(col(Deployment.created_at).desc(), col(Deployment.id).desc())
        )
        return result.first()

    async def newest_active(self, project_id: str) -> Deployment | None:
        result = await self.uow.exec(
            self.select()
            .where(col(Deployment.project_id) == project_id, col(Deployment.status) == ACTIVE)
            .order_by(col(Deployment.created_at).desc(), col(Deployment.id).desc())
        )
        return result.first()

    async def draining(self, project_id: str) -> Sequence[Deployment]:
        result = await self.uow.exec(
            self.select().where(
                col(Deployment.project_id) == project_id, col(Deployment.status) == DRAINING
            )
        )
        return result.all()

    async def filtered(
        self, project_id: str, *, environment: str, status: str, limit: int, offset: int
    ) -> tuple[Sequence[Deployment], int]:
        """Newest first, and the number of matches."""
        conditions = [self._owned(), col(Deployment.project_id) == project_id]
        if environment:
            conditions.append(col(Deployment.environment) == environment)
        if status:
            conditions.append(col(Deployment.status) == status)
        rows = await self.uow.exec(
            select(Deployment)
            .where(*conditions)
            .order_by(col(Deployment.created_at).desc(), col(Deployment.id).desc())
            .limit(limit)
            .offset(offset)
        )
        total = await self.uow.exec(select(func.count()).select_from(Deployment).where(*conditions))
        return rows.all(), int(total.one())


class ImportedToolRepository(TenantScopedRepository[ImportedTool]):
    model = ImportedTool

    async def in_project(self, project_id: str) -> Sequence[ImportedTool]:
        """The project's imported tools (bot function import), oldest first."""
        result = await self.uow.exec(
            self.select()
            .where(col(ImportedTool.project_id) == project_id)
            .order_by(col(ImportedTool.created_at), col(ImportedTool.name))
        )
        return result.all()
