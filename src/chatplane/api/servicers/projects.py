"""chatplane.project.v1.ProjectService."""

from __future__ import annotations

from typing import Any

import grpc

from chatplane.api import call
from chatplane.iam import scopes
from chatplane.kit.clock import iso
from chatplane.project.v1 import project_service_pb2 as pb
from chatplane.project.v1 import project_service_pb2_grpc as pb_grpc
from chatplane.projects.service import ProjectService
from chatplane.projects.types import Project

_SERVICE = "/chatplane.project.v1.ProjectService/"
SCOPES = {
    _SERVICE + "CreateProject": scopes.PROJECT_WRITE,
    _SERVICE + "ListProjects": scopes.PROJECT_READ,
    _SERVICE + "GetProject": scopes.PROJECT_READ,
    _SERVICE + "DeleteProject": scopes.PROJECT_WRITE,
}

Context = grpc.aio.ServicerContext[Any, Any]


def to_proto(project: Project) -> pb.Project:
    return pb.Project(
        id=project.id,
        name=project.name,
        description=project.description,
        default_model=project.default_model,
        tier_models=project.tier_models,
        created_at=iso(project.created_at),
        updated_at=iso(project.updated_at),
    )


class ProjectServicer(pb_grpc.ProjectServiceServicer):
    def __init__(self, projects: ProjectService) -> None:
        self._projects = projects

    async def CreateProject(
        self, request: pb.CreateProjectRequest, context: Context
    ) -> pb.CreateProjectResponse:
        project = await self._projects.create(
            call.principal().tenant_id,
            name=request.name,
            description=request.description,
            default_model=request.default_model,
            tiers=dict(request.tier_models),
        )
        return pb.CreateProjectResponse(success=True, project=to_proto(project))

    async def ListProjects(
        self, request: pb.ListProjectsRequest, context: Context
    ) -> pb.ListProjectsResponse:
        page = await self._projects.list(
            call.principal().tenant_id, limit=request.limit, offset=request.offset
        )
        return pb.ListProjectsResponse(
            success=True,
            total=page.total,
            offset=page.offset,
            limit=page.limit,
            projects=[to_proto(p) for p in page.projects],
        )

    async def GetProject(
        self, request: pb.GetProjectRequest, context: Context
    ) -> pb.GetProjectResponse:
        project = await self._projects.get(call.principal().tenant_id, request.project_id)
        return pb.GetProjectResponse(success=True, project=to_proto(project))

    async def DeleteProject(
        self, request: pb.DeleteProjectRequest, context: Context
    ) -> pb.DeleteProjectResponse:
        await self._projects.delete(call.principal().tenant_id, request.project_id)
        return pb.DeleteProjectResponse(success=True, id=request.project_id)
