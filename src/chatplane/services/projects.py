"""Projects."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from chatplane.errors import InvalidArgument, NotFound
from chatplane.ids import cuid
from chatplane.storage.models import Project
from chatplane.storage.repositories import ProjectRepository

TIERS = ("fast", "balanced", "powerful")
DEFAULT_PAGE = 50
MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class ProjectPage:
    projects: Sequence[Project]
    total: int
    limit: int
    offset: int


def page_bounds(limit: int, offset: int) -> tuple[int, int]:
    """Validate limit/offset: 0 means the default; limit at most 200."""
    if limit < 0 or limit > MAX_PAGE:
        raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    if offset < 0:
        raise InvalidArgument("offset must not be negative", field="offset")
    return limit or DEFAULT_PAGE, offset


def tier_models(project: Project) -> dict[str, str]:
    loaded = json.loads(project.tier_models or "{}")
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


class ProjectService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._on_change = on_change  # told the tenant id after a project changes

    async def create(
        self,
        tenant_id: str,
        *,
        name: str,
        description: str = "",
        default_model: str = "",
        tiers: Mapping[str, str] | None = None,
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
        project = Project(
            id=cuid(),
            tenant_id=tenant_id,
            name=name,
            description=description,
            default_model=default_model.strip(),
            tier_models=json.dumps(tiers, sort_keys=True),
        )
        async with self._sessions() as session:
            ProjectRepository(session).add(project)
            await session.commit()
        return project

    async def get(self, tenant_id: str, project_id: str) -> Project:
        async with self._sessions() as session:
            project = await ProjectRepository(session).get(tenant_id, project_id)
        if project is None:
            raise NotFound("Project not found", reason="PROJECT_NOT_FOUND")
        return project

    async def list(self, tenant_id: str, *, limit: int, offset: int) -> ProjectPage:
        limit, offset = page_bounds(limit, offset)
        async with self._sessions() as session:
            rows, total = await ProjectRepository(session).page(
                tenant_id, limit=limit, offset=offset
            )
        return ProjectPage(rows, total, limit, offset)

    async def delete(self, tenant_id: str, project_id: str) -> None:
        async with self._sessions() as session:
            repo = ProjectRepository(session)
            project = await repo.get(tenant_id, project_id)
            if project is None:
                raise NotFound("Project not found", reason="PROJECT_NOT_FOUND")
            await repo.delete(project)
            await session.commit()
        if self._on_change is not None:
            self._on_change(tenant_id)
