"""chatplane.chat.v1.ChatService: converts protobuf <-> chat domain events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import grpc
from google.api import httpbody_pb2
from google.protobuf import json_format, struct_pb2

from chatplane.api import agent_wire, call
from chatplane.api.chat_wire import sse_frame, to_proto
from chatplane.api.coalesce import coalesce
from chatplane.chat.service import ChatService
from chatplane.chat.types import ChatRequest
from chatplane.chat.v1 import chat_service_pb2 as pb
from chatplane.chat.v1 import chat_service_pb2_grpc as pb_grpc
from chatplane.errors import ChatplaneError, InvalidArgument
from chatplane.iam import scopes
from chatplane.llm.types import Message, ToolCall, ToolSpec
from chatplane.projects.service import ProjectService
from chatplane.sessions.turn import TurnService
from chatplane.type.v1 import usage_pb2
from chatplane.usage.service import UsageService

_SERVICE = "/chatplane.chat.v1.ChatService/"
SCOPES = {
    _SERVICE + "CompleteChat": scopes.SESSION_EXECUTE,
    _SERVICE + "StreamChat": scopes.SESSION_EXECUTE,
    _SERVICE + "StreamChatSse": scopes.SESSION_EXECUTE,
    _SERVICE + "GetChatUsage": scopes.ANALYTICS_READ,
    _SERVICE + "ChatAgent": scopes.SESSION_EXECUTE,
    _SERVICE + "StreamAgentTurn": scopes.SESSION_EXECUTE,
    _SERVICE + "StreamAgentTurnSse": scopes.SESSION_EXECUTE,
}

Context = grpc.aio.ServicerContext[Any, Any]
SSE_CONTENT_TYPE = "text/event-stream"
_TURN_DONE = object()


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


def to_request(request: pb.CompleteChatRequest) -> ChatRequest:
    return ChatRequest(
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


def _cost(value: float | None) -> struct_pb2.Value:
    if value is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    return struct_pb2.Value(number_value=value)


class ChatServicer(pb_grpc.ChatServiceServicer):
    def __init__(
        self,
        chats: ChatService,
        usage: UsageService,
        projects: ProjectService,
        turns: TurnService,
    ) -> None:
        self._chats = chats
        self._usage = usage
        self._projects = projects
        self._turns = turns

    async def CompleteChat(
        self, request: pb.CompleteChatRequest, context: Context
    ) -> pb.CompleteChatResponse:
        result = await self._chats.complete(call.principal().tenant_id, to_request(request))
        return pb.CompleteChatResponse(
            content=result.content,
            tool_calls=[
                pb.ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in result.tool_calls
            ],
            model=result.model,
            finish_reason=result.finish_reason,
            usage=usage_pb2.TokenUsage(
                input_tokens=result.usage.input_tokens,
                output_tokens=result.usage.output_tokens,
                total_tokens=result.usage.total_tokens,
                estimated_cost=_cost(result.estimated_cost),
            ),
            latency_ms=result.latency_ms,
        )

    async def StreamChat(
        self, request: pb.CompleteChatRequest, context: Context
    ) -> AsyncIterator[pb.StreamChatResponse]:
        async for event in self._chats.stream(call.principal().tenant_id, to_request(request)):
            yield to_proto(event)

    async def StreamChatSse(
        self, request: pb.CompleteChatRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        events = self._chats.stream(call.principal().tenant_id, to_request(request))
        async for frames in coalesce(events, sse_frame):
            yield httpbody_pb2.HttpBody(content_type=SSE_CONTENT_TYPE, data=frames)

    async def GetChatUsage(
        self, request: pb.GetChatUsageRequest, context: Context
    ) -> pb.GetChatUsageResponse:
        tenant_id = call.principal().tenant_id
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
        self, request: pb.ChatAgentRequest, context: Context
    ) -> pb.ChatAgentResponse:
        principal = call.principal()
        result = await self._turns.run(
            principal.tenant_id, principal.scopes, agent_wire.to_turn_request(request)
        )
        return agent_wire.to_response(result)

    async def _turn_events(
        self, request: pb.ChatAgentRequest
    ) -> AsyncGenerator[pb.StreamAgentTurnResponse, None]:
        """The turn's events as they happen, then its response (see the proto's order)."""
        principal = call.principal()
        turn = agent_wire.to_turn_request(request)
        queue: asyncio.Queue[object] = asyncio.Queue()

        async def listener(item: object) -> None:
            queue.put_nowait(item)

        task = asyncio.create_task(
            self._turns.run(principal.tenant_id, principal.scopes, turn, listener=listener)
        )
        task.add_done_callback(lambda _: queue.put_nowait(_TURN_DONE))
        started = False
        try:
            while (item := await queue.get()) is not _TURN_DONE:
                event = agent_wire.stream_event(item)
                if event is not None:
                    started = True
                    yield event
            try:
                result = task.result()
            except ChatplaneError as exc:
                if not started:
                    raise
                yield pb.StreamAgentTurnResponse(error=pb.StreamError(error=exc.message))
                return
            yield pb.StreamAgentTurnResponse(response=agent_wire.to_response(result))
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def StreamAgentTurn(
        self, request: pb.ChatAgentRequest, context: Context
    ) -> AsyncIterator[pb.StreamAgentTurnResponse]:
        async with contextlib.aclosing(self._turn_events(request)) as events:
            async for event in events:
                yield event

    async def StreamAgentTurnSse(
        self, request: pb.ChatAgentRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        events = self._turn_events(request)
        async for frames in coalesce(events, agent_wire.sse_frame):
            yield httpbody_pb2.HttpBody(content_type=SSE_CONTENT_TYPE, data=frames)
