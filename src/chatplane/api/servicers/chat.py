"""chatplane.chat.v1.ChatService: converts protobuf <-> chat domain events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.api import httpbody_pb2
from google.protobuf import json_format, struct_pb2

from chatplane.api import context
from chatplane.api.coalesce import coalesce
from chatplane.chat.v1 import chat_service_pb2 as pb
from chatplane.chat.v1 import chat_service_pb2_grpc as pb_grpc
from chatplane.errors import InvalidArgument, Unimplemented
from chatplane.llm.types import (
    Message,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    UsageUpdate,
)
from chatplane.services import chat, scopes
from chatplane.services.projects import ProjectService
from chatplane.services.usage import UsageService

_SERVICE = "/chatplane.chat.v1.ChatService/"
SCOPES = {
    _SERVICE + "CompleteChat": scopes.SESSION_EXECUTE,
    _SERVICE + "StreamChat": scopes.SESSION_EXECUTE,
    _SERVICE + "StreamChatSse": scopes.SESSION_EXECUTE,
    _SERVICE + "GetChatUsage": scopes.ANALYTICS_READ,
    _SERVICE + "ChatAgent": scopes.SESSION_EXECUTE,
}

Context = grpc.aio.ServicerContext[Any, Any]
SSE_CONTENT_TYPE = "text/event-stream"


def _content(value: struct_pb2.Value, index: int) -> str | list[dict[str, Any]]:
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return ""
    if kind == "string_value":
        return value.string_value
    if kind == "list_value":
        parts: Any = json_format.MessageToDict(value.list_value)  # a list for ListValue
        if isinstance(parts, list) and all(isinstance(p, dict) for p in parts):
            return parts
    raise InvalidArgument(
        f"Invalid request: messages[{index}].content must be a string or an array of parts",
        field=f"messages[{index}].content",
    )


def to_request(request: pb.CompleteChatRequest) -> chat.ChatRequest:
    return chat.ChatRequest(
        project_id=request.project_id,
        messages=tuple(
            Message(
                role=m.role,
                content=_content(m.content, i),
                name=m.name,
                tool_call_id=m.tool_call_id,
                tool_calls=tuple(ToolCall(c.id, c.name, c.arguments) for c in m.tool_calls),
            )
            for i, m in enumerate(request.messages)
        ),
        session_id=request.session_id,
        tools=tuple(
            ToolSpec(t.name, t.description, json_format.MessageToDict(t.parameters))
            for t in request.tools
        ),
        model_id=request.model_id,
        tier=request.tier,
        temperature=request.temperature if request.HasField("temperature") else None,
        max_tokens=request.max_tokens if request.HasField("max_tokens") else None,
    )


def to_event(event: chat.ChatEvent) -> pb.StreamChatResponse:
    match event:
        case chat.StreamMetadata(model_id, provider, source):
            return pb.StreamChatResponse(
                metadata=pb.StreamMetadata(model_id=model_id, provider=provider, source=source)
            )
        case TextDelta(delta):
            return pb.StreamChatResponse(text_delta=pb.TextDelta(delta=delta))
        case ToolCallStart(call_id, name):
            return pb.StreamChatResponse(tool_call_start=pb.ToolCallStart(id=call_id, name=name))
        case ToolCallDelta(call_id, arguments):
            return pb.StreamChatResponse(
                tool_call_delta=pb.ToolCallDelta(id=call_id, arguments=arguments)
            )
        case ToolCallEnd(call_id, name, arguments):
            return pb.StreamChatResponse(
                tool_call_end=pb.ToolCallEnd(id=call_id, name=name, arguments=arguments)
            )
        case UsageUpdate(inp, out):
            return pb.StreamChatResponse(usage=pb.UsageUpdate(input_tokens=inp, output_tokens=out))
        case chat.StreamFailed(error):
            return pb.StreamChatResponse(error=pb.StreamError(error=error))
        case chat.StreamCompleted(inp, out, total, cost, latency):
            done = pb.StreamComplete(
                input_tokens=inp, output_tokens=out, total_tokens=total, latency_ms=latency
            )
            if cost is not None:
                done.estimated_cost = cost
            return pb.StreamChatResponse(complete=done)
    raise TypeError(f"not a chat event: {event!r}")


def _cost(value: float | None) -> struct_pb2.Value:
    if value is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    return struct_pb2.Value(number_value=value)


class ChatServicer(pb_grpc.ChatServiceServicer):
    def __init__(
        self, chats: chat.ChatService, usage: UsageService, projects: ProjectService
    ) -> None:
        self._chats = chats
        self._usage = usage
        self._projects = projects

    async def CompleteChat(
        self, request: pb.CompleteChatRequest, context_: Context
    ) -> pb.CompleteChatResponse:
        result = await self._chats.complete(context.principal().tenant_id, to_request(request))
        return pb.CompleteChatResponse(
            content=result.content,
            tool_calls=[
                pb.ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in result.tool_calls
            ],
            model=result.model,
            finish_reason=result.finish_reason,
            usage=pb.ChatUsage(
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                total_tokens=result.input_tokens + result.output_tokens,
                estimated_cost=_cost(result.estimated_cost),
            ),
            latency_ms=result.latency_ms,
        )

    async def StreamChat(
        self, request: pb.CompleteChatRequest, context_: Context
    ) -> AsyncIterator[pb.StreamChatResponse]:
        async for event in self._chats.stream(context.principal().tenant_id, to_request(request)):
            yield to_event(event)

    async def StreamChatSse(
        self, request: pb.CompleteChatRequest, context_: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        events = self._chats.stream(context.principal().tenant_id, to_request(request))
        async for frames in coalesce(events, chat.sse_frame):
            yield httpbody_pb2.HttpBody(content_type=SSE_CONTENT_TYPE, data=frames)

    async def GetChatUsage(
        self, request: pb.GetChatUsageRequest, context_: Context
    ) -> pb.GetChatUsageResponse:
        tenant_id = context.principal().tenant_id
        if not request.project_id:
            raise InvalidArgument("Invalid request: projectId is required", field="projectId")
        await self._projects.get(tenant_id, request.project_id)  # 404 across tenants
        report = await self._usage.report(
            tenant_id,
            request.project_id,
            start_date=request.start_date,
            end_date=request.end_date,
            group_by=request.group_by,
        )
        s = report.summary
        return pb.GetChatUsageResponse(
            summary=pb.UsageSummary(
                total_tokens=s.total_tokens,
                total_cost=round(s.total_cost, 8),
                request_count=s.request_count,
                avg_latency=round(s.avg_latency, 2),
            ),
            by_model=[
                pb.ModelUsage(
                    model_id=m.model,
                    provider=m.provider,
                    total_tokens=m.total_tokens,
                    total_cost=round(m.total_cost, 8),
                    request_count=m.request_count,
                )
                for m in report.by_model
            ],
        )

    async def ChatAgent(
        self, request: pb.ChatAgentRequest, context_: Context
    ) -> pb.ChatAgentResponse:
        raise Unimplemented(
            "Agent-backed chat (POST /api/v1/chat/agent) is not built yet: "
            "ABL agents and deployments come in a later release"
        )
