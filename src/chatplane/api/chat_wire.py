"""Chat stream events on the wire: one table of events, two small encoders.

`fields(event)` names each event (the SSE event name, which is also the field of
`StreamChatResponse`'s oneof) and gives its fields by proto name; `sse_frame` writes
them as the documented JSON (camelCase keys, null for an unknown cost) and `to_proto`
as the typed gRPC message.
"""

from __future__ import annotations

import json
from typing import Any

from google.api import httpbody_pb2

from chatplane.chat.types import ChatEvent, StreamCompleted, StreamFailed, StreamMetadata
from chatplane.chat.v1 import chat_service_pb2 as pb
from chatplane.llm.types import TextDelta, ToolCallDelta, ToolCallEnd, ToolCallStart, UsageUpdate

# The message type behind each event name.
_MESSAGES: dict[str, Any] = {
    "metadata": pb.StreamMetadata,
    "text_delta": pb.TextDelta,
    "tool_call_start": pb.ToolCallStart,
    "tool_call_delta": pb.ToolCallDelta,
    "tool_call_end": pb.ToolCallEnd,
    "usage": pb.UsageUpdate,
    "error": pb.StreamError,
    "complete": pb.StreamComplete,
}
_camel_cache: dict[str, str] = {}


def _camel(name: str) -> str:
    found = _camel_cache.get(name)
    if found is None:
        head, *rest = name.split("_")
        found = _camel_cache[name] = head + "".join(p.title() for p in rest)
    return found


def fields(event: ChatEvent) -> tuple[str, dict[str, Any]]:
    """The event's name and its fields by proto field name."""
    match event:
        case StreamMetadata(model_id, provider, source):
            return "metadata", {"model_id": model_id, "provider": provider, "source": str(source)}
        case TextDelta(delta):
            return "text_delta", {"delta": delta}
        case ToolCallStart(call_id, name):
            return "tool_call_start", {"id": call_id, "name": name}
        case ToolCallDelta(call_id, arguments):
            return "tool_call_delta", {"id": call_id, "arguments": arguments}
        case ToolCallEnd(call_id, name, arguments):
            return "tool_call_end", {"id": call_id, "name": name, "arguments": arguments}
        case UsageUpdate(usage):
            return "usage", {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
            }
        case StreamFailed(error, retryable):
            return "error", {"error": error, "retryable": True} if retryable else {"error": error}
        case StreamCompleted(usage, cost, latency):
            return "complete", {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "total_tokens": usage.total_tokens,
                "estimated_cost": cost,
                "latency_ms": latency,
            }
    raise TypeError(f"not a chat event: {event!r}")


def sse_frame(event: ChatEvent) -> bytes:
    """`event: NAME\\ndata: JSON\\n\\n` with the documented field names."""
    name, values = fields(event)
    data = {_camel(k): v for k, v in values.items()}
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {name}\ndata: {body}\n\n".encode()


def to_proto(event: ChatEvent) -> pb.StreamChatResponse:
    """The typed stream message; a null value (unknown cost) stays unset."""
    name, values = fields(event)
    message = _MESSAGES[name](**{k: v for k, v in values.items() if v is not None})
    return pb.StreamChatResponse(**{name: message})


SHUTTING_DOWN = StreamFailed("server shutting down", retryable=True)

# The last message of a stream cut at the end of the shutdown grace period, per method.
SHUTDOWN_MESSAGES: dict[str, Any] = {
    "/chatplane.chat.v1.ChatService/StreamChat": lambda: to_proto(SHUTTING_DOWN),
    "/chatplane.chat.v1.ChatService/StreamChatSse": lambda: httpbody_pb2.HttpBody(
        content_type="text/event-stream", data=sse_frame(SHUTTING_DOWN)
    ),
}
