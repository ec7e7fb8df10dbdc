"""ChatService over gRPC with the built-in local provider (no credentials configured)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2

from chatplane.app import App
from chatplane.chat.v1 import chat_service_pb2 as pb
from chatplane.chat.v1 import chat_service_pb2_grpc as pb_grpc
from chatplane.kit.clock import utcnow
from chatplane.kit.ids import cuid
from chatplane.llm.models import LOCAL_MODEL
from chatplane.project.v1 import project_service_pb2 as project_pb
from chatplane.project.v1 import project_service_pb2_grpc as project_grpc
from chatplane.usage.service import UsageService, UsageWriter
from tests.api.test_project_service import error_info
from tests.conftest import TenantKeys, new_tenant


def text(value: str) -> struct_pb2.Value:
    return struct_pb2.Value(string_value=value)


def user(content: str) -> pb.ChatMessage:
    return pb.ChatMessage(role="user", content=text(content))


async def make_project(channel: grpc.aio.Channel, tenant: TenantKeys, **fields: object) -> str:
    stub = project_grpc.ProjectServiceStub(channel)
    created = await stub.CreateProject(
        project_pb.CreateProjectRequest(name="chat", **fields),  # type: ignore[arg-type]
        metadata=tenant.metadata,
    )
    return created.project.id


async def test_complete_with_local_provider(channel: grpc.aio.Channel, tenant: TenantKeys) -> None:
    pid = await make_project(channel, tenant)
    stub = pb_grpc.ChatServiceStub(channel)
    reply = await stub.CompleteChat(
        pb.CompleteChatRequest(project_id=pid, messages=[user("What is 2+2?")]),
        metadata=tenant.metadata,
    )
    assert reply.model == LOCAL_MODEL
    assert reply.content
    assert reply.finish_reason == "end_turn"
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    assert reply.usage.total_tokens == reply.usage.input_tokens + reply.usage.output_tokens
    assert reply.usage.estimated_cost.WhichOneof("kind") == "number_value"
    # Deterministic: the same question gets the same answer.
    again = await stub.CompleteChat(
        pb.CompleteChatRequest(project_id=pid, messages=[user("What is 2+2?")]),
        metadata=tenant.metadata,
    )
    assert again.content == reply.content


async def test_stream_typed_events(channel: grpc.aio.Channel, tenant: TenantKeys) -> None:
    pid = await make_project(channel, tenant)
    stub = pb_grpc.ChatServiceStub(channel)
    events = [
        e
        async for e in stub.StreamChat(
            pb.CompleteChatRequest(project_id=pid, messages=[user("hello there")]),
            metadata=tenant.metadata,
        )
    ]
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "metadata"
    assert events[0].metadata.provider == "local"
    assert events[0].metadata.source == "server"
    assert kinds[-1] == "complete"
    assert kinds[-2] == "usage"
    assert kinds.count("text_delta") >= 2
    streamed = "".join(e.text_delta.delta for e in events if e.HasField("text_delta"))
    unary = await stub.CompleteChat(
        pb.CompleteChatRequest(project_id=pid, messages=[user("hello there")]),
        metadata=tenant.metadata,
    )
    assert streamed == unary.content
    done = events[-1].complete
    assert done.total_tokens == done.input_tokens + done.output_tokens
    assert done.input_tokens == unary.usage.input_tokens


def _request(pid: str, **overrides: object) -> pb.CompleteChatRequest:
    request = pb.CompleteChatRequest(project_id=pid, messages=[user("hi")])
    for name, value in overrides.items():
        if name == "messages":
            del request.messages[:]
            request.messages.extend(value)  # type: ignore[arg-type]
        elif name == "tools":
            request.tools.extend(value)  # type: ignore[arg-type]
        else:
            setattr(request, name, value)
    return request


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [pb.ChatMessage(role="robot", content=text("x"))]}, "messages[0].role"),
        ({"messages": [pb.ChatMessage(role="user")]}, "messages[0].content"),
        ({"messages": [pb.ChatMessage(role="system", content=text("x"))]}, "messages"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"max_tokens": 0}, "maxTokens"),
        ({"max_tokens": 200_001}, "maxTokens"),
        ({"tier": "turbo"}, "tier"),
        ({"tools": [pb.Tool(name="t", description="d")]}, "tools[0].parameters"),
        ({"tools": [pb.Tool(name="bad name", description="d")]}, "tools[0].name"),
        ({"project_id": ""}, "projectId"),
    ],
)
async def test_validation(
    channel: grpc.aio.Channel, tenant: TenantKeys, overrides: dict[str, object], field: str
) -> None:
    pid = await make_project(channel, tenant)
    stub = pb_grpc.ChatServiceStub(channel)
    for call in (stub.CompleteChat, stub.StreamChat):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            result = call(_request(pid, **overrides), metadata=tenant.metadata)
            if call is stub.StreamChat:
                async for _ in result:  # type: ignore[union-attr]
                    pass
            else:
                await result  # type: ignore[misc]
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith("Invalid request: ")
        assert error_info(err.value).metadata["field"] == field


async def test_boundaries_are_accepted(channel: grpc.aio.Channel, tenant: TenantKeys) -> None:
    pid = await make_project(channel, tenant)
    stub = pb_grpc.ChatServiceStub(channel)
    for overrides in (
        {"temperature": 0.0},
        {"temperature": 2.0},
        {"max_tokens": 1},
        {"max_tokens": 200_000},
    ):
        reply = await stub.CompleteChat(_request(pid, **overrides), metadata=tenant.metadata)
        assert reply.model == LOCAL_MODEL
    one = await stub.CompleteChat(_request(pid, max_tokens=1), metadata=tenant.metadata)
    assert one.usage.output_tokens == 1 and one.finish_reason == "max_tokens"


async def test_project_of_another_tenant_is_not_found(
    channel: grpc.aio.Channel, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    pid = await make_project(channel, tenant)
    stub = pb_grpc.ChatServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CompleteChat(_request(pid), metadata=other_tenant.metadata)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "Project not found"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetChatUsage(
            pb.GetChatUsageRequest(project_id=pid), metadata=other_tenant.metadata
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("project_fields", "overrides", "detail"),
    [
        ({"default_model": "claude-sonnet-4-6"}, {}, "no Anthropic credentials"),
        ({}, {"model_id": "claude-haiku-4-5"}, "no Anthropic credentials"),
        ({}, {"model_id": "gpt-4o"}, "no provider serves model"),
        (
            {"tier_models": {"fast": "claude-haiku-4-5"}},
            {"tier": "fast"},
            "no Anthropic credentials",
        ),
    ],
)
async def test_runtime_not_configured(
    channel: grpc.aio.Channel,
    tenant: TenantKeys,
    project_fields: dict[str, object],
    overrides: dict[str, object],
    detail: str,
) -> None:
    pid = await make_project(channel, tenant, **project_fields)
    stub = pb_grpc.ChatServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CompleteChat(_request(pid, **overrides), metadata=tenant.metadata)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert err.value.details().startswith("Runtime not configured")
    assert detail in err.value.details()
    assert error_info(err.value).reason == "RUNTIME_NOT_CONFIGURED"


async def test_usage_totals_match_calls(channel: grpc.aio.Channel, tenant: TenantKeys) -> None:
    pid = await make_project(channel, tenant)
    stub = pb_grpc.ChatServiceStub(channel)
    total_tokens = 0
    for question in ("one", "two two", "three three three"):
        reply = await stub.CompleteChat(
            _request(pid, messages=[user(question)]), metadata=tenant.metadata
        )
        total_tokens += reply.usage.total_tokens
    streamed = [e async for e in stub.StreamChat(_request(pid), metadata=tenant.metadata)]
    total_tokens += streamed[-1].complete.total_tokens

    usage = await stub.GetChatUsage(
        pb.GetChatUsageRequest(project_id=pid, group_by="model"), metadata=tenant.metadata
    )
    assert usage.summary.request_count == 4
    assert usage.summary.total_tokens == total_tokens
    assert usage.summary.avg_latency >= 0
    assert [(m.model_id, m.provider, m.request_count) for m in usage.by_model] == [
        (LOCAL_MODEL, "local", 4)
    ]
    assert usage.by_model[0].total_tokens == total_tokens

    none = await stub.GetChatUsage(
        pb.GetChatUsageRequest(project_id=pid, end_date="2000-01-01"), metadata=tenant.metadata
    )
    assert none.summary.request_count == 0 and not none.by_model
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetChatUsage(
            pb.GetChatUsageRequest(project_id=pid, start_date="yesterday"), metadata=tenant.metadata
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_agent_chat_without_agents_is_not_found(
    channel: grpc.aio.Channel, tenant: TenantKeys
) -> None:
    stub = pb_grpc.ChatServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ChatAgent(
            pb.ChatAgentRequest(project_id="p", message="hi"), metadata=tenant.metadata
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "Project not found or has no agents"


async def test_deleted_project_stops_answering_at_once(
    channel: grpc.aio.Channel, tenant: TenantKeys
) -> None:
    pid = await make_project(channel, tenant)
    stub = pb_grpc.ChatServiceStub(channel)
    await stub.CompleteChat(_request(pid), metadata=tenant.metadata)  # settings now cached
    projects = project_grpc.ProjectServiceStub(channel)
    await projects.DeleteProject(
        project_pb.DeleteProjectRequest(project_id=pid), metadata=tenant.metadata
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CompleteChat(_request(pid), metadata=tenant.metadata)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_usage_writer_flushes_everything_on_close(app: App) -> None:
    writer = UsageWriter(app.db)
    tenant = await new_tenant(app)
    project = await app.projects.create(tenant.tenant_id, name="usage")
    for i in range(10):
        writer.record(
            {
                "id": cuid(),
                "tenant_id": tenant.tenant_id,
                "project_id": project.id,
                "session_id": "",
                "model": "m",
                "provider": "local",
                "input_tokens": i,
                "output_tokens": 1,
                "cache_read_tokens": 0,
                "cache_write_tokens": 0,
                "cost": None,
                "latency_ms": 1,
                "ttft_ms": None,
                "finish_reason": "end_turn",
                "status": "ok",
                "created_at": utcnow(),
            }
        )
    await writer.aclose()
    with pytest.raises(RuntimeError):
        writer.record({})
    report = await UsageService(app.db, writer).report(
        tenant.tenant_id, project.id, start_date="", end_date="", group_by=""
    )
    assert report.summary.request_count == 10
    assert report.summary.total_tokens == sum(range(10)) + 10
