"""Anthropic response mapping: JSON bodies -> Completion, SSE frames -> ProviderEvents.

The direct tests feed the mapper; the RawUpstream ones feed exact bytes through the
provider, as the SDK delivers them.
"""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from chatplane.errors import Unavailable
from chatplane.kit.sse import SSEParser
from chatplane.llm.anthropic import AnthropicProvider
from chatplane.llm.anthropic.errors import BadResponse
from chatplane.llm.anthropic.response import StreamMapper, completion_from_body
from chatplane.llm.types import Completion, ProviderEvent, TokenUsage, ToolCall
from tests.unit.llm.helpers import (
    FULL_EVENTS,
    FULL_STREAM,
    USAGE,
    RawReply,
    RawUpstream,
    events_of,
    params,
    sse,
)

RESPONSE = httpx2.Response(200, request=httpx2.Request("POST", "http://upstream/v1/messages"))


def map_stream(body: bytes) -> tuple[list[ProviderEvent], StreamMapper]:
    parser, mapper = SSEParser(), StreamMapper()
    events = []
    for event_name, data in parser.feed(body) + parser.close():
        if (event := mapper.feed(event_name, data, RESPONSE)) is not None:
            events.append(event)
    return events, mapper


def test_stream_mapping_of_every_frame_kind() -> None:
    events, mapper = map_stream(FULL_STREAM.encode())
    assert events == FULL_EVENTS
    assert mapper.finished


def test_message_delta_keeps_counts_it_does_not_repeat() -> None:
    start = {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 2}
    events, _ = map_stream(
        (
            sse("message_start", {"type": "message_start", "message": {"usage": start}})
            + sse(
                "message_delta",
                {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 3}},
            )
            + sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "max_tokens"},
                    "usage": {"output_tokens": 4, "input_tokens": 6},
                },
            )
            + sse("message_stop", {"type": "message_stop"})
        ).encode()
    )
    usages = [e.usage for e in events]  # type: ignore[union-attr]
    assert usages == [
        TokenUsage(5, 1, cache_read_tokens=2),
        TokenUsage(5, 3, cache_read_tokens=2),
        TokenUsage(6, 4, cache_read_tokens=2),
        TokenUsage(6, 4, cache_read_tokens=2),
    ]
    assert events[-1].finish_reason == "max_tokens"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ((b"error", b'{"type": "error", "error": {"type": "overloaded_error"}}'), "api"),
        ((b"message", b'{"type": "error", "error": {"type": "api_error"}}'), "api"),
        ((b"message_start", b"{not json"), "bad"),
        ((b"content_block_delta", b'{"type": "content_block_delta", "delta": {}}'), "bad"),
    ],
)
def test_stream_error_and_garbage_frames(frame: tuple[bytes, bytes], error: str) -> None:
    expected = anthropic.APIStatusError if error == "api" else BadResponse
    with pytest.raises(expected):
        StreamMapper().feed(*frame, RESPONSE)


def test_in_stream_error_is_the_sdk_error_with_status_200() -> None:
    with pytest.raises(anthropic.APIStatusError) as info:
        StreamMapper().feed(
            b"error", b'{"type": "error", "error": {"type": "rate_limit_error"}}', RESPONSE
        )
    assert info.value.status_code == 200 and info.value.type == "rate_limit_error"


def test_completion_from_body() -> None:
    body = {
        "content": [
            {"type": "thinking", "thinking": "hm"},
            {"type": "text", "text": "Two "},
            {"type": "tool_use", "id": "toolu_a", "name": "f", "input": {"x": 1}},
            {"type": "text", "text": "parts."},
        ],
        "stop_reason": None,
        "usage": {"input_tokens": 3, "output_tokens": 4, "cache_creation_input_tokens": 1},
    }
    assert completion_from_body(body) == Completion(
        content="Two parts.",
        tool_calls=(ToolCall("toolu_a", "f", '{"x": 1}'),),
        finish_reason="end_turn",
        usage=TokenUsage(3, 4, cache_write_tokens=1),
    )
    with pytest.raises(BadResponse):
        completion_from_body({"content": "not a list"})


# --- through the provider, exact bytes ------------------------------------------------------


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
async def test_stream_raw_sse_in_small_pieces(eol: str) -> None:
    body = FULL_STREAM.replace("\n", eol).encode()
    async with RawUpstream(RawReply(body, piece=97)) as upstream:
        p = AnthropicProvider("sk-ant-x", upstream.base_url)
        try:
            assert await events_of(p, params()) == FULL_EVENTS
        finally:
            await p.aclose()


@pytest.mark.parametrize(
    "reply",
    [
        RawReply(b"<html>oops</html>", content_type="text/html"),
        RawReply(b'{"type": "message", "content": "not a list"}', content_type="application/json"),
    ],
)
async def test_complete_unexpected_body_is_upstream_error(reply: RawReply) -> None:
    async with RawUpstream(reply) as upstream:
        p = AnthropicProvider("sk-ant-x", upstream.base_url)
        try:
            with pytest.raises(Unavailable) as info:
                await p.complete(params())
        finally:
            await p.aclose()
    assert info.value.reason == "UPSTREAM_ERROR"
    assert upstream.requests == 1


@pytest.mark.parametrize(
    "body",
    [
        "event: message_start\ndata: {not json\n\n",
        sse("content_block_delta", {"type": "content_block_delta", "delta": {}}),
        sse("message_start", {"type": "message_start", "message": {"usage": USAGE}})
        + "event: message_stop\ndata: [1, 2]\n\n",
    ],
)
async def test_stream_unexpected_event_is_upstream_error(body: str) -> None:
    async with RawUpstream(RawReply(body.encode())) as upstream:
        p = AnthropicProvider("sk-ant-x", upstream.base_url)
        try:
            with pytest.raises(Unavailable) as info:
                await events_of(p, params())
        finally:
            await p.aclose()
    assert info.value.reason == "UPSTREAM_ERROR"
    assert upstream.requests == 1


async def test_stream_without_message_stop_is_unavailable() -> None:
    body = FULL_STREAM[: FULL_STREAM.index("event: message_stop")]
    async with RawUpstream(RawReply(body.encode())) as upstream:
        p = AnthropicProvider("sk-ant-x", upstream.base_url, max_retries=0)
        try:
            with pytest.raises(Unavailable) as info:
                await events_of(p, params())
        finally:
            await p.aclose()
    assert info.value.reason == "UPSTREAM_UNAVAILABLE"
