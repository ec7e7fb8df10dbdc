"""AnthropicProvider against the fake Anthropic server: streams, completions, the one retry
path, cancellation."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import typing
from contextlib import aclosing

import anthropic
import pytest

from chatplane.errors import ResourceExhausted, Unavailable
from chatplane.llm.anthropic import AnthropicProvider
from chatplane.llm.local import LocalProvider
from chatplane.llm.types import (
    Finish,
    Provider,
    ProviderEvent,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
    collect,
)
from tests.fakes.anthropic import FakeAnthropic, FakeAnthropicThread, FakeToolUse, ScriptedReply
from tests.unit.llm.helpers import (
    FULL_EVENTS,
    FULL_STREAM,
    MODEL,
    WEATHER,
    RawReply,
    RawUpstream,
    events_of,
    params,
    sse,
)

pytest_plugins = ["tests.unit.llm.fixtures"]


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
    assert isinstance(events[0], UsageUpdate) and events[0].usage.input_tokens == 42
    assert "".join(e.delta for e in events if isinstance(e, TextDelta)) == (
        "Quantum computing leverages qubits."
    )
    usage = TokenUsage(42, 7, cache_read_tokens=5, cache_write_tokens=3)
    assert events[-2] == UsageUpdate(usage)
    assert events[-1] == Finish("end_turn", usage)
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
    assert (completion.finish_reason, completion.usage) == ("tool_use", TokenUsage(30, 12))
    assert "stream" not in fake.last_request.body


async def test_stream_and_complete_send_the_same_arguments(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    p = params("Same?", tools=(WEATHER,), max_tokens=77)
    await provider.complete(p)
    await events_of(provider, p)
    complete_body, stream_body = (r.body for r in fake.requests)
    assert stream_body.pop("stream") is True
    assert complete_body == stream_body


# --- retries --------------------------------------------------------------------------------


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


@pytest.mark.parametrize("call", ["stream", "complete"])
async def test_retry_log_line_names_the_cause(
    fake: FakeAnthropic,
    provider: AnthropicProvider,
    call: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.fail_next(529)
    with caplog.at_level(logging.WARNING, logger="chatplane.llm.anthropic.provider"):
        if call == "stream":
            await events_of(provider, params())
        else:
            await provider.complete(params())
    [line] = [r.getMessage() for r in caplog.records]
    assert re.fullmatch(
        r"anthropic request attempt 1 failed \(UPSTREAM_UNAVAILABLE: OverloadedError: 529"
        r" Overloaded\); retrying in 0\.0\ds",
        line,
    ), line


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


async def test_error_frame_before_any_event_is_retried() -> None:
    failure = sse("error", {"type": "error", "error": {"type": "overloaded_error"}})
    async with RawUpstream(RawReply(failure.encode()), RawReply(FULL_STREAM.encode())) as upstream:
        p = AnthropicProvider("sk-ant-x", upstream.base_url, retry_base_delay=0.01)
        try:
            assert await events_of(p, params()) == FULL_EVENTS
        finally:
            await p.aclose()
    assert upstream.requests == 2


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


# --- the fake server and the protocol -------------------------------------------------------


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


async def test_providers_satisfy_the_protocol(fake: FakeAnthropic) -> None:
    remote: Provider = AnthropicProvider(fake.api_key, fake.base_url)
    local: Provider = LocalProvider()
    assert (remote.name, local.name) == ("anthropic", "local")
    await remote.aclose()
    await local.aclose()
