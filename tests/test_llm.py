"""LLM provider layer: the real Anthropic SDK against the fake server, the local provider,
prices and model defaults."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import typing
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

import anthropic
import pytest
import pytest_asyncio
from aiohttp import web
from anthropic.resources.messages.messages import DEPRECATED_MODELS
from anthropic.types import Model

from chatplane.errors import (
    ChatplaneError,
    DeadlineExceeded,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from chatplane.llm import (
    DEFAULT_MODEL,
    DEFAULT_TIER_MODELS,
    LOCAL_MODEL,
    AnthropicProvider,
    CompletionParams,
    Finish,
    LocalProvider,
    Message,
    PriceTable,
    Provider,
    ProviderEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    UsageUpdate,
    collect,
    model_for_tier,
    provider_for_model,
)
from chatplane.llm.anthropic_provider import SSEParser, convert_messages
from chatplane.llm.local_provider import count_tokens
from tests.fake_anthropic import FakeAnthropic, FakeAnthropicThread, FakeToolUse, ScriptedReply

MODEL = "claude-sonnet-4-6"
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


def params(text: str = "Hello there", **kwargs: typing.Any) -> CompletionParams:
    return CompletionParams(
        model=kwargs.pop("model", MODEL), messages=(Message("user", text),), **kwargs
    )


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


@pytest_asyncio.fixture
async def provider(fake: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(fake.api_key, fake.base_url, retry_base_delay=0.01)
    yield p
    await p.aclose()


async def events_of(
    provider: AnthropicProvider | LocalProvider, p: CompletionParams
) -> list[ProviderEvent]:
    return [e async for e in provider.stream(p)]


# --- streaming ------------------------------------------------------------------------------


async def test_stream_text_events_in_order(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(
        ScriptedReply(
            text="Quantum computing leverages qubits.",
            input_tokens=42,
            output_tokens=7,
            cache_read_input_tokens=5,
            cache_creation_input_tokens=3,
        )
    )
    events = await events_of(provider, params())
    kinds = [type(e) for e in events]
    # message_start reports the input at once; message_delta the final counts.
    assert kinds == [UsageUpdate] + [TextDelta] * 4 + [UsageUpdate, Finish]
    assert isinstance(events[0], UsageUpdate) and events[0].input_tokens == 42
    assert "".join(e.delta for e in events if isinstance(e, TextDelta)) == (
        "Quantum computing leverages qubits."
    )
    assert events[-2] == UsageUpdate(42, 7)
    assert events[-1] == Finish("end_turn", 42, 7, cache_read_tokens=5, cache_write_tokens=3)
    assert fake.last_request.body["stream"] is True


async def test_stream_tool_use(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    args = {"city": "Paris", "unit": "celsius", "days": [1, 2]}
    fake.script(
        ScriptedReply(text="Checking.", tool_calls=[FakeToolUse("get_weather", args, "toolu_1")])
    )
    events = await events_of(provider, params("Weather in Paris?", tools=(WEATHER,)))

    start = next(i for i, e in enumerate(events) if isinstance(e, ToolCallStart))
    assert isinstance(events[0], UsageUpdate)
    assert all(isinstance(e, TextDelta) for e in events[1:start])
    assert events[start] == ToolCallStart("toolu_1", "get_weather")
    end = next(i for i, e in enumerate(events) if isinstance(e, ToolCallEnd))
    deltas = events[start + 1 : end]
    assert deltas and all(isinstance(d, ToolCallDelta) and d.id == "toolu_1" for d in deltas)
    end_event = events[end]
    assert isinstance(end_event, ToolCallEnd)
    assert end_event.arguments == "".join(typing.cast(ToolCallDelta, d).arguments for d in deltas)
    assert json.loads(end_event.arguments) == args
    assert isinstance(events[-1], Finish) and events[-1].finish_reason == "tool_use"


async def test_collect_stream_into_completion(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(ScriptedReply(text="Hi.", tool_calls=[FakeToolUse("get_weather", {}, "toolu_9")]))
    completion = await collect(provider.stream(params(tools=(WEATHER,))))
    assert completion.content == "Hi."
    assert completion.tool_calls == (ToolCall("toolu_9", "get_weather", "{}"),)
    assert completion.finish_reason == "tool_use"


async def test_complete_with_tool_calls(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(
        ScriptedReply(
            text="Two lookups.",
            tool_calls=[
                FakeToolUse("get_weather", {"city": "Oslo"}, "toolu_a"),
                FakeToolUse("get_weather", {"city": "Rome"}, "toolu_b"),
            ],
            input_tokens=30,
            output_tokens=12,
        )
    )
    completion = await provider.complete(params(tools=(WEATHER,)))
    assert completion.content == "Two lookups."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in completion.tool_calls] == [
        ("toolu_a", "get_weather", {"city": "Oslo"}),
        ("toolu_b", "get_weather", {"city": "Rome"}),
    ]
    assert (completion.finish_reason, completion.input_tokens, completion.output_tokens) == (
        "tool_use",
        30,
        12,
    )
    assert "stream" not in fake.last_request.body


# --- request conversion ---------------------------------------------------------------------


async def test_message_conversion_as_received_upstream(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    conversation = (
        Message("system", "You are terse."),
        Message("user", "Weather in Oslo and Rome?"),
        Message("system", "Use metric units."),
        Message(
            "assistant",
            "",
            tool_calls=(
                ToolCall("toolu_a", "get_weather", '{"city": "Oslo"}'),
                ToolCall("toolu_b", "get_weather", '{"city": "Rome"}'),
            ),
        ),
        Message("tool", "3 C", tool_call_id="toolu_a"),
        Message("tool", [{"type": "text", "text": "18 C"}], tool_call_id="toolu_b"),
        Message("user", [{"type": "text", "text": "Summarize."}]),
    )
    await provider.complete(
        CompletionParams(MODEL, conversation, tools=(WEATHER,), temperature=0.7, max_tokens=500)
    )
    sent = fake.last_request
    body = sent.body
    assert body["model"] == MODEL and body["max_tokens"] == 500
    assert body["system"] == "You are terse.\n\nUse metric units."
    # Sampling parameters are rejected by API version 2026-10-21: never sent.
    assert "temperature" not in body
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"] == [{"type": "text", "text": "Weather in Oslo and Rome?"}]
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"city": "Rome"}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "3 C"},
        {
            "type": "tool_result",
            "tool_use_id": "toolu_b",
            "content": [{"type": "text", "text": "18 C"}],
        },
        {"type": "text", "text": "Summarize."},
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER.parameters,
        }
    ]
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"
    assert sent.headers["anthropic-version"]


def test_convert_messages_content_parts() -> None:
    anthropic_image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAA"},
    }
    system, messages = convert_messages(
        [
            Message(
                "user",
                [
                    {"type": "text", "text": "What is in these?"},
                    anthropic_image,
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            )
        ]
    )
    assert system is None
    assert messages[0]["content"][1:] == [
        anthropic_image,
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
    ]


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([Message("robot", "hi")], "messages[0].role"),
        ([Message("system", "only a system prompt")], "messages"),
        ([Message("tool", "42")], "messages[0].tool_call_id"),
        (
            [Message("assistant", "", tool_calls=(ToolCall("t1", "f", "{not json"),))],
            "messages[0].tool_calls[0].arguments",
        ),
        ([Message("user", [{"type": "audio", "data": "x"}])], "messages[0].content[0]"),
    ],
)
def test_convert_messages_rejects_bad_input(messages: list[Message], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        convert_messages(messages)
    assert info.value.metadata.get("field") == field


# --- retries and errors ---------------------------------------------------------------------


async def test_retry_before_first_token(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.fail_next(429)
    events = await events_of(provider, params())
    assert isinstance(events[-1], Finish)
    assert fake.request_count == 2
    assert [r.headers["x-stainless-retry-count"] for r in fake.requests] == ["0", "0"]


async def test_complete_retries_overload_then_succeeds(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.fail_next(529)
    fake.fail_next(500)
    completion = await provider.complete(params("ping"))
    assert completion.content == "Echo: ping"
    assert fake.request_count == 3


async def test_retries_are_bounded(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.fail_next(529, times=3)
    with pytest.raises(Unavailable):
        await events_of(provider, params())
    assert fake.request_count == 3  # 1 + max_retries (2)


async def test_long_retry_after_is_not_waited_for(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.fail_next(429, retry_after="30")
    started = time.monotonic()
    with pytest.raises(ResourceExhausted) as info:
        await provider.complete(params())
    assert time.monotonic() - started < 2
    assert fake.request_count == 1
    assert info.value.metadata["retry_after_seconds"] == "30"


@pytest.mark.parametrize("mode", ["error", "cut"])
async def test_no_retry_after_first_token(
    fake: FakeAnthropic, provider: AnthropicProvider, mode: typing.Literal["error", "cut"]
) -> None:
    fake.break_next_stream(after_deltas=2, mode=mode)
    received: list[ProviderEvent] = []
    with pytest.raises(Unavailable) as info:
        async for event in provider.stream(params("one two three four five")):
            received.append(event)
    assert [type(e) for e in received] == [UsageUpdate, TextDelta, TextDelta]
    assert info.value.reason == "UPSTREAM_UNAVAILABLE"
    assert fake.request_count == 1


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [
        (429, ResourceExhausted, "UPSTREAM_RATE_LIMITED"),
        (529, Unavailable, "UPSTREAM_UNAVAILABLE"),
        (500, Unavailable, "UPSTREAM_UNAVAILABLE"),
        (400, InvalidArgument, "UPSTREAM_INVALID_REQUEST"),
        (401, Unavailable, "UPSTREAM_AUTH"),
        (403, Unavailable, "UPSTREAM_AUTH"),
        (404, InvalidArgument, "UPSTREAM_INVALID_REQUEST"),
    ],
)
@pytest.mark.parametrize("call", ["stream", "complete"])
async def test_error_mapping(
    fake: FakeAnthropic, status: int, error: type[ChatplaneError], reason: str, call: str
) -> None:
    fake.fail_next(status, message="model: claude-nope not found" if status == 404 else None)
    p = AnthropicProvider(fake.api_key, fake.base_url, max_retries=0)
    try:
        with pytest.raises(error) as info:
            if call == "stream":
                await events_of(p, params())
            else:
                await p.complete(params())
    finally:
        await p.aclose()
    assert info.value.reason == reason
    assert fake.request_count == 1
    if status == 404:
        assert "claude-nope not found" in info.value.message


async def test_wrong_api_key_is_an_auth_error(fake: FakeAnthropic) -> None:
    p = AnthropicProvider("sk-ant-wrong", fake.base_url)
    try:
        with pytest.raises(Unavailable) as info:
            await p.complete(params())
    finally:
        await p.aclose()
    assert info.value.reason == "UPSTREAM_AUTH"
    assert "sk-ant-wrong" not in info.value.message
    assert fake.request_count == 1  # credentials errors are not retried


async def test_unreachable_upstream_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    p = AnthropicProvider(
        "sk-ant-x", f"http://127.0.0.1:{port}", max_retries=1, retry_base_delay=0.01
    )
    try:
        with pytest.raises(Unavailable):
            await events_of(p, params())
    finally:
        await p.aclose()


async def test_read_timeout_is_deadline_exceeded(fake: FakeAnthropic) -> None:
    fake.chunk_delay = 1.0
    p = AnthropicProvider(fake.api_key, fake.base_url, max_retries=0, timeout=0.3)
    try:
        with pytest.raises(DeadlineExceeded):
            await events_of(p, params())
    finally:
        await p.aclose()


# --- raw response parsing -------------------------------------------------------------------


def sse(event: str, data: dict[str, typing.Any], eol: str = "\n") -> str:
    return f"event: {event}{eol}data: {json.dumps(data)}{eol}{eol}"


SSE_FRAMES = (
    ": a comment\n"
    "event: message_start\n"
    'data: {"type": "message_start",\n'
    'data:  "n": 1}\n'
    "\n"
    "event: ping\n"
    "\n"
    "data: no-space\n"
    "id: 7\n"
    "retry: 10\n"
    "\n"
    "event: unterminated\n"
    "data: {}\n"
)
SSE_EXPECTED = [
    (b"message_start", b'{"type": "message_start",\n "n": 1}'),
    (b"ping", b""),
    (b"", b"no-space"),
]


def parse_in_pieces(body: bytes, cuts: typing.Iterable[int]) -> list[tuple[bytes, bytes]]:
    parser = SSEParser()
    frames: list[tuple[bytes, bytes]] = []
    start = 0
    for cut in [*cuts, len(body)]:
        frames += parser.feed(body[start:cut])
        start = cut
    return frames + parser.close()


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_sse_parser_frames_split_anywhere(eol: str) -> None:
    body = SSE_FRAMES.replace("\n", eol).encode()
    assert parse_in_pieces(body, []) == SSE_EXPECTED
    for cut in range(1, len(body)):  # every split point, including inside a CRLF
        assert parse_in_pieces(body, [cut]) == SSE_EXPECTED, cut
    assert parse_in_pieces(body, range(1, len(body))) == SSE_EXPECTED  # byte by byte


def test_sse_parser_final_cr_ends_a_frame() -> None:
    assert parse_in_pieces(b"data: x\r\r", []) == [(b"", b"x")]
    assert parse_in_pieces(b"data: x\r", []) == []


@dataclass
class RawReply:
    body: bytes
    status: int = 200
    content_type: str = "text/event-stream"
    piece: int = 0  # write the body in pieces of this size (0: at once)


class RawUpstream:
    """Answers /v1/messages with scripted raw bodies, to feed the provider exact bytes."""

    def __init__(self, *replies: RawReply) -> None:
        self.replies = list(replies)
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> RawUpstream:
        app = web.Application()
        app.router.add_post("/v1/messages", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        reply = self.replies[min(self.requests, len(self.replies) - 1)]
        self.requests += 1
        response = web.StreamResponse(
            status=reply.status, headers={"content-type": reply.content_type}
        )
        await response.prepare(request)
        size = reply.piece or len(reply.body)
        for i in range(0, len(reply.body), size):
            await response.write(reply.body[i : i + size])
            if reply.piece:
                await asyncio.sleep(0.001)  # separate reads on the client side
        await response.write_eof()
        return response


USAGE = {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": None}
FULL_STREAM = "".join(
    [
        sse("message_start", {"type": "message_start", "message": {"usage": USAGE}}),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking"}},
        ),
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta"}},
        ),
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta"}},
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ": keep-alive\n\n",
        sse("ping", {"type": "ping"}),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 1, "content_block": {"type": "text"}},
        ),
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta"}},
        ),
        *(
            sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "text_delta", "text": t},
                },
            )
            for t in ("Héllo", "", " wörld")
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
        sse("some_future_event", {"type": "some_future_event"}),
        sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "toolu_x", "name": "f", "input": {}},
            },
        ),
        *(
            sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 2,
                    "delta": {"type": "input_json_delta", "partial_json": p},
                },
            )
            for p in ("", '{"a": ', "1}")
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 2}),
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 9, "cache_creation_input_tokens": 4},
            },
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]
)
FULL_EVENTS: list[ProviderEvent] = [
    UsageUpdate(10, 1),
    TextDelta("Héllo"),
    TextDelta(" wörld"),
    ToolCallStart("toolu_x", "f"),
    ToolCallDelta("toolu_x", '{"a": '),
    ToolCallDelta("toolu_x", "1}"),
    ToolCallEnd("toolu_x", "f", '{"a": 1}'),
    UsageUpdate(10, 9),
    Finish("tool_use", 10, 9, cache_read_tokens=0, cache_write_tokens=4),
]


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
    ("kind", "error", "reason"),
    [
        ("overloaded_error", Unavailable, "UPSTREAM_UNAVAILABLE"),
        ("rate_limit_error", ResourceExhausted, "UPSTREAM_RATE_LIMITED"),
        ("timeout_error", DeadlineExceeded, "UPSTREAM_TIMEOUT"),
        ("invalid_request_error", InvalidArgument, "UPSTREAM_INVALID_REQUEST"),
    ],
)
async def test_in_stream_error_kinds(kind: str, error: type[ChatplaneError], reason: str) -> None:
    start = sse("message_start", {"type": "message_start", "message": {"usage": USAGE}})
    failure = sse("error", {"type": "error", "error": {"type": kind, "message": "nope"}})
    async with RawUpstream(RawReply((start + failure).encode())) as upstream:
        p = AnthropicProvider("sk-ant-x", upstream.base_url, retry_base_delay=0.01)
        received: list[ProviderEvent] = []
        try:
            with pytest.raises(error) as info:
                async for event in p.stream(params()):
                    received.append(event)
        finally:
            await p.aclose()
    assert info.value.reason == reason
    assert received == [UsageUpdate(10, 1)]
    assert upstream.requests == 1  # an event was delivered: no retry
    if kind == "invalid_request_error":
        assert "nope" in info.value.message


async def test_error_frame_before_any_event_is_retried() -> None:
    failure = sse("error", {"type": "error", "error": {"type": "overloaded_error"}})
    async with RawUpstream(RawReply(failure.encode()), RawReply(FULL_STREAM.encode())) as upstream:
        p = AnthropicProvider("sk-ant-x", upstream.base_url, retry_base_delay=0.01)
        try:
            assert await events_of(p, params()) == FULL_EVENTS
        finally:
            await p.aclose()
    assert upstream.requests == 2


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


# --- cancellation ---------------------------------------------------------------------------

LONG = " ".join(f"word{i}" for i in range(40))


async def test_closing_the_stream_closes_upstream(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.chunk_delay = 0.1  # the whole reply would take over 4 s
    started = time.monotonic()
    async with aclosing(provider.stream(params(LONG))) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                break
    await asyncio.wait_for(fake.disconnected.wait(), 2)
    assert time.monotonic() - started < 2
    assert fake.streams_completed == 0


async def test_dropping_the_stream_closes_upstream(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.chunk_delay = 0.1
    # A plain `break` without aclosing(): the event loop's async-generator finalizer closes it.
    async for event in provider.stream(params(LONG)):
        if isinstance(event, TextDelta):
            break
    await asyncio.wait_for(fake.disconnected.wait(), 2)
    assert fake.streams_completed == 0


async def test_cancelling_the_consumer_closes_upstream(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.chunk_delay = 0.1
    first = asyncio.Event()

    async def consume() -> None:
        async for event in provider.stream(params(LONG)):
            if isinstance(event, TextDelta):
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(fake.disconnected.wait(), 2)
    assert fake.streams_completed == 0


# --- fake server in a thread ----------------------------------------------------------------


def test_fake_server_thread_runner() -> None:
    with FakeAnthropicThread() as server:
        client = anthropic.Anthropic(
            api_key=server.api_key, base_url=server.base_url, max_retries=0
        )
        try:
            message = client.messages.create(
                model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "sync"}]
            )
        finally:
            client.close()
    assert message.content[0].type == "text" and message.content[0].text == "Echo: sync"


# --- local provider -------------------------------------------------------------------------


def local_params(*messages: Message, **kwargs: typing.Any) -> CompletionParams:
    return CompletionParams(LOCAL_MODEL, messages, **kwargs)


async def test_local_provider_is_deterministic() -> None:
    local = LocalProvider()
    p = local_params(Message("system", "Be nice."), Message("user", "Hello, world!"))
    first = await events_of(local, p)
    assert first == await events_of(local, p)
    completion = await local.complete(p)
    assert completion.content.startswith("You said: Hello, world!")
    assert "Claude" not in completion.content
    assert completion.finish_reason == "end_turn"


async def test_local_provider_counts_tokens_by_its_rule() -> None:
    local = LocalProvider()
    p = local_params(Message("system", "Be nice."), Message("user", "Hello, world!"))
    events = await events_of(local, p)
    finish = events[-1]
    assert isinstance(finish, Finish)
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert finish.output_tokens == len(deltas) == count_tokens("".join(d.delta for d in deltas))
    # tokens = matches of \w+|[^\w\s]: "Be" "nice" "." + "Hello" "," "world" "!"
    assert finish.input_tokens == 7
    with_tools = await local.complete(
        local_params(
            Message("system", "Be nice."), Message("user", "Hello, world!"), tools=(WEATHER,)
        )
    )
    spec = {
        "name": WEATHER.name,
        "description": WEATHER.description,
        "parameters": WEATHER.parameters,
    }
    assert with_tools.input_tokens == 7 + count_tokens(json.dumps(spec, sort_keys=True))


async def test_local_provider_respects_max_tokens() -> None:
    events = await events_of(
        LocalProvider(), local_params(Message("user", "a b c d e f"), max_tokens=3)
    )
    assert [type(e) for e in events] == [TextDelta] * 3 + [UsageUpdate, Finish]
    assert events[-1] == Finish("max_tokens", 6, 3)


async def test_local_provider_tool_call() -> None:
    local = LocalProvider()
    completion = await local.complete(
        local_params(Message("user", "Please use get_weather for Oslo"), tools=(WEATHER,))
    )
    assert completion.finish_reason == "tool_use"
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [("get_weather", "{}")]
    # A tool result is answered, not met with another call.
    call = completion.tool_calls[0]
    follow_up = await local.complete(
        local_params(
            Message("user", "Please use get_weather for Oslo"),
            Message("assistant", completion.content, tool_calls=(call,)),
            Message("tool", "3 C", tool_call_id=call.id),
            tools=(WEATHER,),
        )
    )
    assert follow_up.finish_reason == "end_turn" and "3 C" in follow_up.content


async def test_local_provider_refuses_other_models() -> None:
    with pytest.raises(InvalidArgument):
        await LocalProvider().complete(params(model=DEFAULT_MODEL))


async def test_collect_without_finish_is_an_error() -> None:
    async def truncated() -> AsyncIterator[ProviderEvent]:
        yield TextDelta("partial")

    with pytest.raises(Unavailable):
        await collect(truncated())


# --- prices and models ----------------------------------------------------------------------


def test_price_table_costs() -> None:
    table = PriceTable.load()
    assert table.cost("claude-sonnet-4-6", 1_000_000, 1_000_000) == 18.0
    assert table.cost("claude-sonnet-4-6", 42, 128) == round((42 * 3 + 128 * 15) / 1e6, 8)
    assert table.cost("claude-haiku-4-5", 0, 0, cache_read=1_000_000, cache_write=1_000_000) == 1.35
    assert table.cost(LOCAL_MODEL, 500, 500) == 0.0
    assert table.cost("claude-unknown-9", 10, 10) is None
    assert table.cost("gpt-4o", 10, 10) is None


def test_price_table_override_file(tmp_path: Path) -> None:
    override = tmp_path / "prices.json"
    override.write_text(
        json.dumps(
            {
                "models": {
                    "claude-sonnet-4-6": {"input": 2.5},
                    "claude-sonnet-5": {"input": 4, "output": 20},
                }
            }
        )
    )
    table = PriceTable.load(override)
    sonnet = table.get("claude-sonnet-4-6")
    assert sonnet is not None and (sonnet.input, sonnet.output) == (2.5, 15.0)
    new = table.get("claude-sonnet-5")
    assert new is not None and (new.cache_read, new.cache_write) == (0.4, 5.0)
    assert table.cost("claude-haiku-4-5", 1_000_000, 0) == 1.0  # untouched entries stay

    override.write_text(json.dumps({"models": {"claude-x": {"input": 1}}}))
    with pytest.raises(ValueError, match="needs at least input and output"):
        PriceTable.load(override)
    override.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read prices file"):
        PriceTable.load(override)


def test_tier_defaults_are_current_sdk_models_with_prices() -> None:
    sdk_models = set(typing.get_args(typing.get_args(Model)[0]))
    table = PriceTable.load()
    assert set(DEFAULT_TIER_MODELS) == {"fast", "balanced", "powerful"}
    for tier, model in DEFAULT_TIER_MODELS.items():
        assert model in sdk_models, model
        assert model not in DEPRECATED_MODELS, model
        assert table.get(model) is not None, model
        assert model_for_tier(tier) == model
    assert DEFAULT_TIER_MODELS["balanced"] == DEFAULT_MODEL
    # Every priced Claude model is one the SDK knows and does not deprecate.
    for model in table.models():
        if model != LOCAL_MODEL:
            assert model in sdk_models and model not in DEPRECATED_MODELS, model


async def test_providers_satisfy_the_protocol(fake: FakeAnthropic) -> None:
    remote: Provider = AnthropicProvider(fake.api_key, fake.base_url)
    local: Provider = LocalProvider()
    assert (remote.name, local.name) == ("anthropic", "local")
    await remote.aclose()
    await local.aclose()


def test_provider_for_model() -> None:
    assert provider_for_model(LOCAL_MODEL) == "local"
    assert provider_for_model(DEFAULT_MODEL) == "anthropic"
    with pytest.raises(InvalidArgument):
        provider_for_model("gpt-4o")
    with pytest.raises(InvalidArgument):
        model_for_tier("turbo")
