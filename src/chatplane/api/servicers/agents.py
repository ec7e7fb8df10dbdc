"""chatplane.agent.v1.AgentService and DeploymentService."""

from __future__ import annotations

from typing import Any

import grpc

from chatplane.agent.v1 import agent_service_pb2 as pb
from chatplane.agent.v1 import agent_service_pb2_grpc as pb_grpc
from chatplane.agent.v1 import deployment_service_pb2 as dpb
from chatplane.agent.v1 import deployment_service_pb2_grpc as dpb_grpc
from chatplane.agents.deployments import DeploymentService
from chatplane.agents.service import AgentService
from chatplane.agents.types import Agent, Deployment
from chatplane.api import call
from chatplane.iam import scopes
from chatplane.kit.clock import iso

_AGENTS = "/chatplane.agent.v1.AgentService/"
_DEPLOYMENTS = "/chatplane.agent.v1.DeploymentService/"
SCOPES = {
    _AGENTS + "PutAgent": scopes.PROJECT_WRITE,
    _AGENTS + "ListAgents": scopes.PROJECT_READ,
    _AGENTS + "GetAgent": scopes.PROJECT_READ,
    _AGENTS + "DeleteAgent": scopes.PROJECT_WRITE,
    _DEPLOYMENTS + "CreateDeployment": scopes.PROJECT_WRITE,
    _DEPLOYMENTS + "ListDeployments": scopes.PROJECT_READ,
    _DEPLOYMENTS + "GetDeployment": scopes.PROJECT_READ,
    _DEPLOYMENTS + "RetireDeployment": scopes.PROJECT_WRITE,
    _DEPLOYMENTS + "PromoteDeployment": scopes.PROJECT_WRITE,
    _DEPLOYMENTS + "RollbackDeployment": scopes.PROJECT_WRITE,
    _DEPLOYMENTS + "RestoreDeployment": scopes.PROJECT_WRITE,
}

Context = grpc.aio.ServicerContext[Any, Any]


def agent_to_proto(agent: Agent) -> pb.Agent:
    return pb.Agent(
        id=agent.id,
        name=agent.name,
        format=agent.format,
        description=agent.description,
        warnings=[
            pb.Diagnostic(code=w.code, message=w.message, line=w.line, column=w.col)
            for w in agent.warnings
        ],
        updated_at=iso(agent.updated_at),
        source=agent.source,
        created_at=iso(agent.created_at),
        content_hash=agent.content_hash,
    )


def deployment_to_proto(d: Deployment) -> dpb.Deployment:
    return dpb.Deployment(
        id=d.id,
        environment=d.environment,
        status=d.status,
        entry_agent_name=d.entry_agent_name,
        label=d.label,
        agents=[
            dpb.DeployedAgent(id=a.id, name=a.name, format=a.format, content_hash=a.content_hash)
            for a in d.agents
        ],
        created_at=iso(d.created_at),
        activated_at=iso(d.activated_at),
        retired_at=iso(d.retired_at),
        content_hash=d.content_hash,
        previous_deployment_id=d.previous_deployment_id or "",
    )


def _tenant() -> str:
    return call.principal().tenant_id


class AgentServicer(pb_grpc.AgentServiceServicer):
    def __init__(self, agents: AgentService) -> None:
        self._agents = agents

    async def PutAgent(self, request: pb.PutAgentRequest, context: Context) -> pb.PutAgentResponse:
        agent = await self._agents.put(
            _tenant(), request.project_id, request.agent_name, request.source
        )
        return pb.PutAgentResponse(success=True, agent=agent_to_proto(agent))

    async def ListAgents(
        self, request: pb.ListAgentsRequest, context: Context
    ) -> pb.ListAgentsResponse:
        agents = await self._agents.list(_tenant(), request.project_id)
        return pb.ListAgentsResponse(success=True, agents=[agent_to_proto(a) for a in agents])

    async def GetAgent(self, request: pb.GetAgentRequest, context: Context) -> pb.GetAgentResponse:
        agent = await self._agents.get(_tenant(), request.project_id, request.agent_name)
        return pb.GetAgentResponse(success=True, agent=agent_to_proto(agent))

    async def DeleteAgent(
        self, request: pb.DeleteAgentRequest, context: Context
    ) -> pb.DeleteAgentResponse:
        agent = await self._agents.delete(_tenant(), request.project_id, request.agent_name)
        return pb.DeleteAgentResponse(success=True, id=agent.id, name=agent.name)


class DeploymentServicer(dpb_grpc.DeploymentServiceServicer):
    def __init__(self, deployments: DeploymentService) -> None:
        self._deployments = deployments

    async def CreateDeployment(
        self, request: dpb.CreateDeploymentRequest, context: Context
    ) -> dpb.CreateDeploymentResponse:
        deployment = await self._deployments.create(
            _tenant(),
            request.project_id,
            environment=request.environment,
            entry_agent_name=request.entry_agent_name,
            label=request.label,
        )
        return dpb.CreateDeploymentResponse(
            success=True, deployment=deployment_to_proto(deployment)
        )

    async def ListDeployments(
        self, request: dpb.ListDeploymentsRequest, context: Context
    ) -> dpb.ListDeploymentsResponse:
        page = await self._deployments.list(
            _tenant(),
            request.project_id,
            environment=request.environment,
            status=request.status,
            limit=request.limit,
            offset=request.offset,
        )
        return dpb.ListDeploymentsResponse(
            success=True,
            total=page.total,
            offset=page.offset,
            limit=page.limit,
            deployments=[deployment_to_proto(d) for d in page.deployments],
        )

    async def GetDeployment(
        self, request: dpb.GetDeploymentRequest, context: Context
    ) -> dpb.GetDeploymentResponse:
        deployment = await self._deployments.get(
            _tenant(), request.project_id, request.deployment_id
        )
        return dpb.GetDeploymentResponse(success=True, deployment=deployment_to_proto(deployment))

    async def RetireDeployment(
        self, request: dpb.RetireDeploymentRequest, context: Context
    ) -> dpb.RetireDeploymentResponse:
        deployment = await self._deployments.retire(
            _tenant(), request.project_id, request.deployment_id
        )
        return dpb.RetireDeploymentResponse(
            success=True, deployment=deployment_to_proto(deployment)
        )

    async def PromoteDeployment(
        self, request: dpb.PromoteDeploymentRequest, context: Context
    ) -> dpb.PromoteDeploymentResponse:
        deployment = await self._deployments.promote(
            _tenant(),
            request.project_id,
            request.deployment_id,
            environment=request.environment,
            label=request.label,
        )
        return dpb.PromoteDeploymentResponse(
            success=True, deployment=deployment_to_proto(deployment)
        )

    async def RollbackDeployment(
        self, request: dpb.RollbackDeploymentRequest, context: Context
    ) -> dpb.RollbackDeploymentResponse:
        rollback = await self._deployments.rollback(
            _tenant(), request.project_id, request.deployment_id
        )
        return dpb.RollbackDeploymentResponse(
            success=True,
            deployment=deployment_to_proto(rollback.active),
            retired=deployment_to_proto(rollback.retired),
        )

    async def RestoreDeployment(
        self, request: dpb.RestoreDeploymentRequest, context: Context
    ) -> dpb.RestoreDeploymentResponse:
        deployment = await self._deployments.restore(
            _tenant(), request.project_id, request.deployment_id
        )
        return dpb.RestoreDeploymentResponse(
            success=True, deployment=deployment_to_proto(deployment)
        )
