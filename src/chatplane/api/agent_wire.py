"""Agent turns on the wire: request and response conversion, and the streamed events.

The SSE form of a streamed turn is `event: text_delta` ({"delta"}), `event: trace_event`
(a TraceEvent), then `event: response` (the ChatAgentResponse, as POST /api/v1/chat/agent
returns it) or `event: error` ({"error"}); the JSON is what the REST gateway prints for
the same messages.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

from chatplane.chat.v1 import chat_service_pb2 as pb
from chatplane.kit.clock import iso, utcnow
from chatplane.llm.types import TextDelta as ModelDelta
from chatplane.runtime import TestContext, ToolMock, TraceEvent
from chatplane.runtime import TextDelta as RuntimeDelta
from chatplane.sessions.types import TimedEvent, TurnRequest, TurnResult


def _dict(value: struct_pb2.Struct) -> dict[str, Any]:
    return dict(json_format.MessageToDict(value))


def to_struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(json.loads(json.dumps(value, default=str)))  # plain JSON types only
    return out


def to_turn_request(request: pb.ChatAgentRequest) -> TurnRequest:
    test: TestContext | None = None
    if request.HasField("test_context"):
        t = request.test_context
        test = TestContext(
            gather_values=_dict(t.gather_values),
            session_variables=_dict(t.session_variables),
            caller_context=_dict(t.caller_context),
            tool_mocks=tuple(
                ToolMock(
                    tool_name=m.tool_name,
                    response=json_format.MessageToDict(m.response)
                    if m.HasField("response")
                    else None,
                    error=m.error or None,
                )
                for m in t.tool_mocks
            ),
            skip_on_start=t.skip_on_start,
            start_at_step=t.start_at_step or None,
        )
    return TurnRequest(
        project_id=request.project_id,
        message=request.message,
        session_id=request.session_id,
        deployment_id=request.deployment_id,
        environment=request.environment,
        agent_id=request.agent_id,
        metadata=_dict(request.metadata),
        test=test,
    )


def trace_event(timed: TimedEvent) -> pb.TraceEvent:
    event = timed.event
    data = dict(event.data)
    if event.type == "llm_call" and "usage" not in data:
        # The documented shape: usage{inputTokens, outputTokens} beside the flat fields.
        data["usage"] = {
            "inputTokens": data.get("inputTokens", 0),
            "outputTokens": data.get("outputTokens", 0),
        }
    message = pb.TraceEvent(
        type=event.type,
        span_id=event.span_id,
        timestamp=iso(timed.started_at),
        duration_ms=event.duration_ms,
        data=to_struct(data),
    )
    if event.parent_span_id:
        message.parent_span_id = event.parent_span_id
    if event.decision_kind:
        message.decision_kind = event.decision_kind
    return message


def to_response(result: TurnResult) -> pb.ChatAgentResponse:
    action = pb.AgentAction(type=result.action.type)
    data = result.action.data
    if result.action.type == "escalate":
        action.reason = str(data.get("reason", ""))
    elif result.action.type == "handoff":
        action.from_agent = str(data.get("fromAgent", data.get("from", "")))
        action.to_agent = str(data.get("toAgent", data.get("to", "")))
    response = pb.ChatAgentResponse(
        session_id=result.session_id,
        response=result.response,
        action=action,
        state=to_struct(result.state),
        trace_events=[trace_event(e) for e in result.events],
    )
    if result.rich_content:
        response.rich_content.CopyFrom(to_struct({"variants": list(result.rich_content)}))
    if result.actions:
        response.actions.CopyFrom(to_struct({"elements": list(result.actions)}))
    return response


def _whole(value: Any) -> Any:
    """Struct numbers are doubles; print whole ones as integers, as the gateway does."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return value


def as_json(message: Message) -> dict[str, Any]:
    """The JSON the REST gateway prints for `message`."""
    printed = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    return dict(_whole(printed))


def sse(name: str, data: dict[str, Any]) -> bytes:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {name}\ndata: {body}\n\n".encode()


def stream_event(item: object) -> pb.StreamAgentTurnResponse | None:
    """A streamed item (model text, runtime text, a trace event) as a stream message."""
    if isinstance(item, ModelDelta):
        return pb.StreamAgentTurnResponse(text_delta=pb.TextDelta(delta=item.delta))
    if isinstance(item, RuntimeDelta):
        return pb.StreamAgentTurnResponse(text_delta=pb.TextDelta(delta=item.text))
    if isinstance(item, TraceEvent):
        return pb.StreamAgentTurnResponse(trace_event=trace_event(TimedEvent(item, utcnow())))
    return None


def sse_frame(event: pb.StreamAgentTurnResponse) -> bytes:
    """`event: NAME\ndata: JSON\n\n`, NAME being the oneof field that is set."""
    name = event.WhichOneof("event") or "error"
    return sse(name, as_json(getattr(event, name)))
