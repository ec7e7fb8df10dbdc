"""ProjectService and ApiKeyService over gRPC against a real server."""

from __future__ import annotations

import re

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from chatplane.iam.v1 import api_key_service_pb2 as keys_pb
from chatplane.iam.v1 import api_key_service_pb2_grpc as keys_grpc
from chatplane.project.v1 import project_service_pb2 as pb
from chatplane.project.v1 import project_service_pb2_grpc as pb_grpc
from tests.conftest import BOOTSTRAP_KEY, TenantKeys

CUID = re.compile(r"^c[0-9a-z]{24}$")


def status_details(err: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The google.rpc.Status a failed call carries in its trailers."""
    raw = dict(err.trailing_metadata() or ())["grpc-status-details-bin"]
    assert isinstance(raw, bytes)
    return status_pb2.Status.FromString(raw)


def error_info(err: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    assert status_details(err).details[0].Unpack(info)
    return info


async def test_create_get_list_delete(channel: grpc.aio.Channel, tenant: TenantKeys) -> None:
    stub = pb_grpc.ProjectServiceStub(channel)
    md = tenant.metadata
    created = await stub.CreateProject(
        pb.CreateProjectRequest(name="demo", description="d", tier_models={"fast": "m1"}),
        metadata=md,
    )
    project = created.project
    assert CUID.match(project.id)
    assert project.name == "demo"
    assert project.tier_models == {"fast": "m1"}
    assert project.created_at.endswith("Z")

    got = await stub.GetProject(pb.GetProjectRequest(project_id=project.id), metadata=md)
    assert got.project == project

    for i in range(3):
        await stub.CreateProject(pb.CreateProjectRequest(name=f"p{i}"), metadata=md)
    page = await stub.ListProjects(pb.ListProjectsRequest(limit=2), metadata=md)
    assert page.total == 4 and page.limit == 2 and page.offset == 0
    assert [p.name for p in page.projects] == ["p2", "p1"]
    rest = await stub.ListProjects(pb.ListProjectsRequest(limit=2, offset=2), metadata=md)
    assert [p.name for p in rest.projects] == ["p0", "demo"]

    await stub.DeleteProject(pb.DeleteProjectRequest(project_id=project.id), metadata=md)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetProject(pb.GetProjectRequest(project_id=project.id), metadata=md)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "Project not found"
    assert error_info(err.value).reason == "PROJECT_NOT_FOUND"


async def test_cross_tenant_is_not_found(
    channel: grpc.aio.Channel, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    stub = pb_grpc.ProjectServiceStub(channel)
    created = await stub.CreateProject(
        pb.CreateProjectRequest(name="mine"), metadata=tenant.metadata
    )
    pid = created.project.id
    for call in (
        stub.GetProject(pb.GetProjectRequest(project_id=pid), metadata=other_tenant.metadata),
        stub.DeleteProject(pb.DeleteProjectRequest(project_id=pid), metadata=other_tenant.metadata),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListProjects(pb.ListProjectsRequest(), metadata=other_tenant.metadata)
    assert pid not in {p.id for p in listed.projects}
    # The owner still has it: the failed delete touched nothing.
    got = await stub.GetProject(pb.GetProjectRequest(project_id=pid), metadata=tenant.metadata)
    assert got.project.name == "mine"


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), "MISSING_CREDENTIALS"),
        ((("authorization", "Bearer abl_sk-nope"),), "INVALID_API_KEY"),
        ((("x-api-key", "abl_sk-nope"),), "INVALID_API_KEY"),
        ((("authorization", "Basic Zm9v"),), "INVALID_AUTH_HEADER"),
    ],
)
async def test_bad_credentials_are_unauthenticated(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    stub = pb_grpc.ProjectServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListProjects(pb.ListProjectsRequest(), metadata=metadata)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(err.value).reason == reason


async def test_x_api_key_header_and_bootstrap_key(channel: grpc.aio.Channel) -> None:
    stub = pb_grpc.ProjectServiceStub(channel)
    page = await stub.ListProjects(
        pb.ListProjectsRequest(), metadata=(("x-api-key", BOOTSTRAP_KEY),)
    )
    assert page.success


async def test_validation(channel: grpc.aio.Channel, tenant: TenantKeys) -> None:
    stub = pb_grpc.ProjectServiceStub(channel)
    cases = [
        (pb.CreateProjectRequest(name="  "), "name"),
        (pb.CreateProjectRequest(name="x" * 201), "name"),
        (pb.CreateProjectRequest(name="x", tier_models={"turbo": "m"}), "tierModels"),
    ]
    for request, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.CreateProject(request, metadata=tenant.metadata)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(err.value).metadata["field"] == field
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListProjects(pb.ListProjectsRequest(limit=201), metadata=tenant.metadata)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_keys_scopes_and_revocation(channel: grpc.aio.Channel, tenant: TenantKeys) -> None:
    keys = keys_grpc.ApiKeyServiceStub(channel)
    projects = pb_grpc.ProjectServiceStub(channel)
    created = await keys.CreateApiKey(
        keys_pb.CreateApiKeyRequest(name="reader", scopes=["project:read"]),
        metadata=tenant.metadata,
    )
    assert created.secret.startswith("abl_sk-")
    reader = (("authorization", f"Bearer {created.secret}"),)
    await projects.ListProjects(pb.ListProjectsRequest(), metadata=reader)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await projects.CreateProject(pb.CreateProjectRequest(name="x"), metadata=reader)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert err.value.details() == "Missing required scope: project:write"

    listed = await keys.ListApiKeys(keys_pb.ListApiKeysRequest(), metadata=tenant.metadata)
    assert created.key.id in {k.id for k in listed.keys}
    assert all(created.secret not in str(k) for k in listed.keys)

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await keys.CreateApiKey(
            keys_pb.CreateApiKeyRequest(name="bad", scopes=["root"]), metadata=tenant.metadata
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    revoked = await keys.RevokeApiKey(
        keys_pb.RevokeApiKeyRequest(key_id=created.key.id), metadata=tenant.metadata
    )
    assert revoked.key.revoked_at
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await projects.ListProjects(pb.ListProjectsRequest(), metadata=reader)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_keys_cross_tenant(
    channel: grpc.aio.Channel, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    keys = keys_grpc.ApiKeyServiceStub(channel)
    created = await keys.CreateApiKey(
        keys_pb.CreateApiKeyRequest(name="k", scopes=["project:read"]), metadata=tenant.metadata
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await keys.RevokeApiKey(
            keys_pb.RevokeApiKeyRequest(key_id=created.key.id), metadata=other_tenant.metadata
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
