"""Projects: the use cases."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from chatplane.errors import InvalidArgument, NotFound
from chatplane.kit.ids import cuid
from chatplane.llm.models import TIERS
from chatplane.projects.repository import ProjectRepository
from chatplane.projects.types import Project, ProjectPage
from chatplane.storage.db import Database, UnitOfWork
from chatplane.storage.models import Project as ProjectRow

DEFAULT_PAGE = 50
MAX_PAGE = 200


def page_bounds(limit: int, offset: int) -> tuple[int, int]:
    """Validate limit/offset: 0 means the default; limit at most 200."""
    if limit < 0 or limit > MAX_PAGE:
        raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    if offset < 0:
        raise InvalidArgument("offset must not be negative", field="offset")
    return limit or DEFAULT_PAGE, offset


def _not_found() -> NotFound:
    return NotFound("Project not found", reason="PROJECT_NOT_FOUND")


class ProjectService:
    def __init__(self, db: Database, *, on_change: Callable[[str], None] | None = None) -> None:
        self._db = db
        self._on_change = on_change  # told the tenant id after a project changes

    async def create(
        self,
        tenant_id: str,
        *,
        name: str,
        description: str = "",
        default_model: str = "",
        tiers: Mapping[str, str] | None = None,
        uow: UnitOfWork | None = None,
    ) -> Project:
        name = name.strip()
        if not name:
            raise InvalidArgument("name is required", field="name")
        if len(name) > 200:
            raise InvalidArgument("name must be at most 200 characters", field="name")
        if len(description) > 2000:
            raise InvalidArgument(
                "description must be at most 2000 characters", field="description"
            )
        if len(default_model) > 200:
            raise InvalidArgument(
                "defaultModel must be at most 200 characters", field="defaultModel"
            )
        tiers = dict(tiers or {})
        unknown = sorted(set(tiers) - set(TIERS))
        if unknown:
            raise InvalidArgument(
                f"tierModels keys must be fast, balanced or powerful (got {', '.join(unknown)})",
                field="tierModels",
            )
        row = ProjectRow(
            id=cuid(),
            tenant_id=tenant_id,
            name=name,
            description=description,
            default_model=default_model.strip(),
            tier_models=json.dumps(tiers, sort_keys=True),
        )
        async with self._db.within(uow) as tx:
            ProjectRepository(tx, tenant_id).add(row)
        return Project.of(row)

    async def get(
        self, tenant_id: str, project_id: str, *, uow: UnitOfWork | None = None
    ) -> Project:
        async with self._db.within(uow) as tx:
            row = await ProjectRepository(tx, tenant_id).get(project_id)
        if row is None:
            raise _not_found()
        return Project.of(row)

    async def list(self, tenant_id: str, *, limit: int, offset: int) -> ProjectPage:
        limit, offset = page_bounds(limit, offset)
        async with self._db.read() as tx:
            rows, total = await ProjectRepository(tx, tenant_id).page(limit=limit, offset=offset)
        return ProjectPage([Project.of(r) for r in rows], total, limit, offset)

    async def delete(self, tenant_id: str, project_id: str) -> None:
        async with self._db.uow() as tx:
            repo = ProjectRepository(tx, tenant_id)
            row = await repo.get(project_id)
            if row is None:
                raise _not_found()
            await repo.delete(row)
        if self._on_change is not None:
            self._on_change(tenant_id)
