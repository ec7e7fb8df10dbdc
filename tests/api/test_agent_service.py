"""AgentService and DeploymentService over gRPC against a real server."""

from __future__ import annotations

import re

import grpc
import pytest
from google.rpc import error_details_pb2

from chatplane.agent.v1 import agent_service_pb2 as pb
from chatplane.agent.v1 import agent_service_pb2_grpc as pb_grpc
from chatplane.agent.v1 import deployment_service_pb2 as dpb
from chatplane.agent.v1 import deployment_service_pb2_grpc as dpb_grpc
from chatplane.app import App
from chatplane.errors import Gone, NotFound
from tests.api.test_chat_service import make_project
from tests.api.test_project_service import error_info, status_details
from tests.conftest import TenantKeys

CUID = re.compile(r"^c[0-9a-z]{24}$")


def agent_source(name: str, *, handoff: str = "", goal: str = "Help the user") -> str:
    text = f'AGENT: {name}\nDESCRIPTION: "The {name} agent"\nGOAL: "{goal}"\n'
    if handoff:
        text += f"\nHANDOFF:\n  - TO: {handoff}\n    WHEN: wants_refund == true\n"
        text += "\nMEMORY:\n  session:\n    - wants_refund\n      TYPE: boolean\n"
    return text


BROKEN = 'AGENT: Broken\nGOAL: "x"\nFLOW:\n  - start\nstart:\n  THEN: nowhere\n'


def reason(err: grpc.aio.AioRpcError) -> str:
    return error_info(err).reason


async def test_put_get_list_delete(channel: grpc.aio.Channel, tenant: TenantKeys) -> None:
    stub = pb_grpc.AgentServiceStub(channel)
    md = tenant.metadata
    pid = await make_project(channel, tenant)
    put = await stub.PutAgent(
        pb.PutAgentRequest(project_id=pid, agent_name="Helper", source=agent_source("Helper")),
        metadata=md,
    )
    agent = put.agent
    assert put.success and CUID.match(agent.id)
    assert (agent.name, agent.format, agent.description) == ("Helper", "abl", "The Helper agent")
    assert not agent.HasField("source") and agent.updated_at.endswith("Z")

    again = await stub.PutAgent(
        pb.PutAgentRequest(
            project_id=pid, agent_name="Helper", source=agent_source("Helper", goal="Other")
        ),
        metadata=md,
    )
    assert again.agent.id == agent.id  # stable across saves
    assert again.agent.content_hash != agent.content_hash

    got = await stub.GetAgent(pb.GetAgentRequest(project_id=pid, agent_name="Helper"), metadata=md)
    assert got.agent.source == agent_source("Helper", goal="Other")

    listed = await stub.ListAgents(pb.ListAgentsRequest(project_id=pid), metadata=md)
    assert [a.name for a in listed.agents] == ["Helper"]
    assert not listed.agents[0].HasField("source")

    deleted = await stub.DeleteAgent(
        pb.DeleteAgentRequest(project_id=pid, agent_name="Helper"), metadata=md
    )
    assert deleted.id == agent.id and deleted.name == "Helper"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetAgent(pb.GetAgentRequest(project_id=pid, agent_name="Helper"), metadata=md)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason(err.value) == "AGENT_NOT_FOUND"


async def test_compile_errors_are_bad_request_details(
    channel: grpc.aio.Channel, tenant: TenantKeys
) -> None:
    stub = pb_grpc.AgentServiceStub(channel)
    pid = await make_project(channel, tenant)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.PutAgent(
            pb.PutAgentRequest(project_id=pid, agent_name="Broken", source=BROKEN),
            metadata=tenant.metadata,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = status_details(err.value)
    assert reason(err.value) == "COMPILE_ERROR"
    bad = error_details_pb2.BadRequest()
    assert status.details[1].Unpack(bad)
    assert bad.field_violations
    for violation in bad.field_violations:
        assert violation.field == "source"
        assert re.match(r"^line \d+, col \d+: \[ABL\d{4}\] .+", violation.description)
    listed = await stub.ListAgents(pb.ListAgentsRequest(project_id=pid), metadata=tenant.metadata)
    assert list(listed.agents) == []  # nothing stored


async def test_handoff_to_unknown_agent_and_name_rules(
    channel: grpc.aio.Channel, tenant: TenantKeys
) -> None:
    stub = pb_grpc.AgentServiceStub(channel)
    md = tenant.metadata
    pid = await make_project(channel, tenant)
    src = agent_source("Front", handoff="Billing")
    saved = await stub.PutAgent(
        pb.PutAgentRequest(project_id=pid, agent_name="Front", source=src), metadata=md
    )
    assert [w.code for w in saved.agent.warnings] == ["ABL0306"]  # an error only at deploy
    await stub.PutAgent(
        pb.PutAgentRequest(project_id=pid, agent_name="Billing", source=agent_source("Billing")),
        metadata=md,
    )
    ok = await stub.PutAgent(
        pb.PutAgentRequest(project_id=pid, agent_name="Front", source=src), metadata=md
    )
    assert ok.agent.name == "Front"

    cases = [
        ("Other", agent_source("Front"), "AGENT_NAME_MISMATCH"),
        ("bad.name", agent_source("bad.name"), "INVALID_ARGUMENT"),
        ("x" * 65, agent_source("x" * 65), "INVALID_ARGUMENT"),
    ]
    for name, source, why in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.PutAgent(
                pb.PutAgentRequest(project_id=pid, agent_name=name, source=source), metadata=md
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert reason(err.value) == why, name


async def test_deploy_lifecycle(app: App, channel: grpc.aio.Channel, tenant: TenantKeys) -> None:
    agents = pb_grpc.AgentServiceStub(channel)
    stub = dpb_grpc.DeploymentServiceStub(channel)
    md = tenant.metadata
    pid = await make_project(channel, tenant)
    for name in ("Billing", "Front"):
        handoff = "Billing" if name == "Front" else ""
        await agents.PutAgent(
            pb.PutAgentRequest(
                project_id=pid, agent_name=name, source=agent_source(name, handoff=handoff)
            ),
            metadata=md,
        )
    # A draft before any deployment: the current sources, the oldest agent first.
    draft = await app.agents.resolve(tenant.tenant_id, pid)
    assert draft.deployment_id is None and draft.status == "draft"
    assert draft.entry_agent == "Billing" and set(draft.agents) == {"Billing", "Front"}

    first = (
        await stub.CreateDeployment(
            dpb.CreateDeploymentRequest(
                project_id=pid, environment="dev", entry_agent_name="Front", label="v1"
            ),
            metadata=md,
        )
    ).deployment
    assert first.status == "active" and first.environment == "dev" and first.label == "v1"
    assert [a.name for a in first.agents] == ["Billing", "Front"]
    assert len(first.content_hash) == 64 and first.previous_deployment_id == ""

    second = (
        await stub.CreateDeployment(
            dpb.CreateDeploymentRequest(
                project_id=pid, environment="dev", entry_agent_name="Front"
            ),
            metadata=md,
        )
    ).deployment
    assert second.previous_deployment_id == first.id
    assert second.content_hash == first.content_hash  # same sources
    got = await stub.GetDeployment(
        dpb.GetDeploymentRequest(project_id=pid, deployment_id=first.id), metadata=md
    )
    assert got.deployment.status == "draining"  # until the next create/retire/list settles it

    resolved = await app.agents.resolve(tenant.tenant_id, pid, environment="dev")
    assert resolved.deployment_id == second.id and resolved.entry_agent == "Front"
    assert resolved.agent_ids["Front"] == second.agents[1].id
    assert (await app.agents.resolve(tenant.tenant_id, pid)).deployment_id == second.id

    listed = await stub.ListDeployments(dpb.ListDeploymentsRequest(project_id=pid), metadata=md)
    assert [(d.id, d.status) for d in listed.deployments] == [
        (second.id, "active"),
        (first.id, "retired"),  # settled: no active sessions
    ]
    only = await stub.ListDeployments(
        dpb.ListDeploymentsRequest(project_id=pid, status="retired"), metadata=md
    )
    assert [d.id for d in only.deployments] == [first.id] and only.total == 1

    # Promote dev -> production: same snapshot, new id.
    prod = (
        await stub.PromoteDeployment(
            dpb.PromoteDeploymentRequest(
                project_id=pid, deployment_id=second.id, environment="production"
            ),
            metadata=md,
        )
    ).deployment
    assert prod.environment == "production" and prod.status == "active"
    assert prod.content_hash == second.content_hash and prod.id != second.id
    assert (await app.agents.resolve(tenant.tenant_id, pid)).deployment_id == prod.id
    assert (
        await app.agents.resolve(tenant.tenant_id, pid, environment="staging")
    ).deployment_id == prod.id

    # Rollback dev: the first one is active again, the second retired.
    rolled = await stub.RollbackDeployment(
        dpb.RollbackDeploymentRequest(project_id=pid, deployment_id=second.id), metadata=md
    )
    assert (rolled.deployment.id, rolled.deployment.status) == (first.id, "active")
    assert (rolled.retired.id, rolled.retired.status) == (second.id, "retired")
    with pytest.raises(Gone):
        await app.agents.resolve(tenant.tenant_id, pid, deployment_id=second.id)
    old = await app.agents.get_deployment_programs(tenant.tenant_id, second.id)
    assert old.status == "retired" and set(old.agents) == {"Billing", "Front"}

    # Restore the second: dev has an active one, so it drains.
    restored = await stub.RestoreDeployment(
        dpb.RestoreDeploymentRequest(project_id=pid, deployment_id=second.id), metadata=md
    )
    assert restored.deployment.status == "draining"

    retired = await stub.RetireDeployment(
        dpb.RetireDeploymentRequest(project_id=pid, deployment_id=first.id), metadata=md
    )
    assert retired.deployment.status == "retired" and retired.deployment.retired_at
    # The restored one was settled (retired) by that call; restore it into an empty dev.
    again = await stub.RestoreDeployment(
        dpb.RestoreDeploymentRequest(project_id=pid, deployment_id=second.id), metadata=md
    )
    assert again.deployment.status == "active"


async def test_invalid_transitions(channel: grpc.aio.Channel, tenant: TenantKeys) -> None:
    agents = pb_grpc.AgentServiceStub(channel)
    stub = dpb_grpc.DeploymentServiceStub(channel)
    md = tenant.metadata
    pid = await make_project(channel, tenant)
    await agents.PutAgent(
        pb.PutAgentRequest(project_id=pid, agent_name="A", source=agent_source("A")), metadata=md
    )
    dep = (
        await stub.CreateDeployment(
            dpb.CreateDeploymentRequest(project_id=pid, environment="dev", entry_agent_name="A"),
            metadata=md,
        )
    ).deployment
    calls = [
        # No previous deployment to roll back to.
        stub.RollbackDeployment(
            dpb.RollbackDeploymentRequest(project_id=pid, deployment_id=dep.id), metadata=md
        ),
        # Only retired ones can be restored.
        stub.RestoreDeployment(
            dpb.RestoreDeploymentRequest(project_id=pid, deployment_id=dep.id), metadata=md
        ),
        # Promote to its own environment.
        stub.PromoteDeployment(
            dpb.PromoteDeploymentRequest(project_id=pid, deployment_id=dep.id, environment="dev"),
            metadata=md,
        ),
    ]
    for pending in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pending
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(err.value) == "INVALID_TRANSITION", err.value.details()
    await stub.RetireDeployment(
        dpb.RetireDeploymentRequest(project_id=pid, deployment_id=dep.id), metadata=md
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RetireDeployment(
            dpb.RetireDeploymentRequest(project_id=pid, deployment_id=dep.id), metadata=md
        )
    assert err.value.details() == "Cannot retire the deployment: it is already retired"

    bad_requests = [
        dpb.CreateDeploymentRequest(project_id=pid, environment="qa", entry_agent_name="A"),
        dpb.CreateDeploymentRequest(project_id=pid, environment="dev", entry_agent_name="Nope"),
    ]
    for request in bad_requests:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.CreateDeployment(request, metadata=md)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_cross_tenant_and_resolve_errors(
    app: App, channel: grpc.aio.Channel, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    agents = pb_grpc.AgentServiceStub(channel)
    stub = dpb_grpc.DeploymentServiceStub(channel)
    pid = await make_project(channel, tenant)
    with pytest.raises(NotFound, match="Project not found or has no agents"):
        await app.agents.resolve(tenant.tenant_id, pid)
    await agents.PutAgent(
        pb.PutAgentRequest(project_id=pid, agent_name="A", source=agent_source("A")),
        metadata=tenant.metadata,
    )
    dep = (
        await stub.CreateDeployment(
            dpb.CreateDeploymentRequest(project_id=pid, environment="dev", entry_agent_name="A"),
            metadata=tenant.metadata,
        )
    ).deployment
    md = other_tenant.metadata
    pending = [
        agents.GetAgent(pb.GetAgentRequest(project_id=pid, agent_name="A"), metadata=md),
        agents.ListAgents(pb.ListAgentsRequest(project_id=pid), metadata=md),
        agents.PutAgent(
            pb.PutAgentRequest(project_id=pid, agent_name="A", source=agent_source("A")),
            metadata=md,
        ),
        agents.DeleteAgent(pb.DeleteAgentRequest(project_id=pid, agent_name="A"), metadata=md),
        stub.GetDeployment(
            dpb.GetDeploymentRequest(project_id=pid, deployment_id=dep.id), metadata=md
        ),
        stub.RetireDeployment(
            dpb.RetireDeploymentRequest(project_id=pid, deployment_id=dep.id), metadata=md
        ),
    ]
    for call in pending:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(NotFound, match="Deployment not found"):
        await app.agents.resolve(other_tenant.tenant_id, pid, deployment_id=dep.id)
    with pytest.raises(NotFound, match="Deployment not found"):
        await app.agents.resolve(tenant.tenant_id, pid, deployment_id="cnope")
    # Untouched for the owner.
    got = await stub.GetDeployment(
        dpb.GetDeploymentRequest(project_id=pid, deployment_id=dep.id), metadata=tenant.metadata
    )
    assert got.deployment.status == "active"
