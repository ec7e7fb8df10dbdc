"""Checks shared by the agent and deployment use cases."""

from __future__ import annotations

from chatplane.agents.types import AGENT_NAME
from chatplane.errors import InvalidArgument, NotFound
from chatplane.projects.repository import ProjectRepository
from chatplane.storage.db import UnitOfWork


def project_not_found() -> NotFound:
    return NotFound("Project not found", reason="PROJECT_NOT_FOUND")


def agent_not_found() -> NotFound:
    return NotFound("Agent not found", reason="AGENT_NOT_FOUND")


def check_agent_name(name: str, field: str = "agentName") -> str:
    if not AGENT_NAME.fullmatch(name):
        raise InvalidArgument(
            f"{field} must be 1-64 characters of letters, digits, _ and -"
            if name
            else f"{field} is required",
            field=field,
        )
    return name


async def require_project(uow: UnitOfWork, tenant_id: str, project_id: str) -> None:
    """NotFound unless the tenant owns the project (another tenant's is not found)."""
    if not project_id or await ProjectRepository(uow, tenant_id).get(project_id) is None:
        raise project_not_found()
