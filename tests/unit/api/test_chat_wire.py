"""One table of chat events, two encoders: SSE JSON and the typed gRPC message agree."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format

from chatplane.api.chat_wire import sse_frame, to_proto
from chatplane.chat.types import (
    ChatEvent,
    ModelSource,
    StreamCompleted,
    StreamFailed,
    StreamMetadata,
)
from chatplane.llm.types import (
    TextDelta,
    TokenUsage,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
)

EVENTS: list[ChatEvent] = [
    StreamMetadata("m", "local", ModelSource.SERVER),
    TextDelta("héllo"),
    ToolCallStart("c1", "t"),
    ToolCallDelta("c1", '{"a"'),
    ToolCallEnd("c1", "t", '{"a":1}'),
    UsageUpdate(TokenUsage(3, 4)),
    StreamFailed("boom"),
    StreamCompleted(TokenUsage(3, 4), 0.5, 12),
]


def test_sse_bytes_are_the_documented_ones() -> None:
    assert sse_frame(TextDelta("hi")) == b'event: text_delta\ndata: {"delta":"hi"}\n\n'
    assert sse_frame(StreamCompleted(TokenUsage(1, 2), None, 5)) == (
        b"event: complete\ndata: "
        b'{"inputTokens":1,"outputTokens":2,"totalTokens":3,"estimatedCost":null,"latencyMs":5}'
        b"\n\n"
    )
    assert sse_frame(StreamMetadata("m", "local", ModelSource.TENANT)) == (
        b'event: metadata\ndata: {"modelId":"m","provider":"local","source":"tenant"}\n\n'
    )


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_proto_and_sse_carry_the_same_fields(event: ChatEvent) -> None:
    head, data = sse_frame(event).decode().split("\n")[:2]
    name = head.removeprefix("event: ")
    sse = json.loads(data.removeprefix("data: "))
    message = to_proto(event)
    assert message.WhichOneof("event") == name
    as_json = json_format.MessageToDict(
        getattr(message, name), always_print_fields_with_no_presence=True
    )
    assert as_json == {k: v for k, v in sse.items() if v is not None}


def test_unknown_cost_is_unset_in_proto() -> None:
    message = to_proto(StreamCompleted(TokenUsage(1, 1), None, 1))
    assert not message.complete.HasField("estimated_cost")


def test_shutdown_error_event_is_retryable_on_sse() -> None:
    from chatplane.api.chat_wire import SHUTDOWN_MESSAGES, SHUTTING_DOWN, sse_frame, to_proto

    assert sse_frame(SHUTTING_DOWN) == (
        b'event: error\ndata: {"error":"server shutting down","retryable":true}\n\n'
    )
    assert to_proto(SHUTTING_DOWN).error.error == "server shutting down"
    sse = SHUTDOWN_MESSAGES["/chatplane.chat.v1.ChatService/StreamChatSse"]()
    assert sse.data == sse_frame(SHUTTING_DOWN) and sse.content_type == "text/event-stream"
