"""The lean transport against the SDK's path (issue 15): the same request on the wire
(method, path, query, every header, the body bytes) and the same results and failures
(Completion, ProviderEvent sequence, SDK exception, domain error) for plain, streamed,
tool-use and error cases, against the fake upstream."""

from __future__ import annotations

import asyncio
import socket
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import anthropic
import pytest
import pytest_asyncio
from aiohttp import web

from chatplane.errors import ChatplaneError
from chatplane.llm.anthropic import AnthropicProvider
from chatplane.llm.anthropic.errors import classify
from chatplane.llm.anthropic.provider import Transport
from chatplane.llm.local import LocalProvider
from chatplane.llm.registry import ProviderRegistry
from chatplane.llm.types import CompletionParams, Message, ProviderEvent, ToolCall, ToolSpec
from tests.fakes.anthropic import FakeAnthropic, FakeToolUse, ScriptedReply
from tests.unit.llm.helpers import WEATHER, RawReply, RawUpstream, events_of, params

pytest_plugins = ["tests.unit.llm.fixtures"]

TRANSPORTS: tuple[Transport, Transport] = ("lean", "sdk")
Call = typing.Literal["complete", "stream"]

# A body with what JSON encoders disagree on: non-ASCII, an emoji, control characters,
# U+2028, floats in exponent form, a big integer, nested schemas, an image, a tool round trip.
TRICKY_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "Zürich, 東京, \u2028 or \x7f \x01"},
        "limit": {"type": "number", "minimum": 1e-07, "maximum": 1e16, "default": 0.1},
        "big": {"type": "integer", "maximum": 2**70},
        "flags": {"type": "array", "items": {"type": "boolean"}, "default": [True, False]},
    },
    "required": ["city"],
}
TRICKY = CompletionParams(
    model="claude-sonnet-4-6",
    messages=(
        Message("system", 'Be terse. «quoted» "double" \\ back\tslash'),
        Message(
            "user",
            [
                {"type": "text", "text": "What's the weather? 🌦️", "cache_control": {"type": "x"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        ),
        Message(
            "assistant", "", tool_calls=(ToolCall("toolu_1", "weather", '{"city": "Zürich"}'),)
        ),
        Message("tool", "12 °C\nsunny", tool_call_id="toolu_1"),
    ),
    tools=(ToolSpec("weather", "Weather — now", TRICKY_SCHEMA), WEATHER),
    max_tokens=321,
)


def make(
    url: str, transport: Transport, key: str = "sk-ant-test-key", **kw: typing.Any
) -> AnthropicProvider:
    provider = AnthropicProvider(key, url, transport=transport, **kw)
    assert provider.transport == transport  # not switched to the SDK by tracing settings
    return provider


@pytest_asyncio.fixture
async def pair(fake: FakeAnthropic) -> AsyncIterator[dict[Transport, AnthropicProvider]]:
    """A provider per transport, without retries: one request per call."""
    providers = {t: make(fake.base_url, t, max_retries=0) for t in TRANSPORTS}
    yield providers
    for p in providers.values():
        await p.aclose()


async def run(provider: AnthropicProvider, call: Call, p: CompletionParams) -> object:
    if call == "complete":
        return await provider.complete(p)
    return await events_of(provider, p)


# --- the request on the wire ----------------------------------------------------------------


@pytest.mark.parametrize("call", ["complete", "stream"])
@pytest.mark.parametrize("case", ["plain", "tricky"])
async def test_same_request_on_the_wire(
    fake: FakeAnthropic, pair: dict[Transport, AnthropicProvider], call: Call, case: str
) -> None:
    p = params() if case == "plain" else TRICKY
    for transport in TRANSPORTS:
        fake.script(ScriptedReply(text="ok"))
        await run(pair[transport], call, p)
    lean, sdk = fake.requests
    assert (lean.method, lean.path, lean.query) == (sdk.method, sdk.path, sdk.query)
    assert (lean.method, lean.path, lean.query) == ("POST", "/v1/messages", "")
    # Every header, byte-equal values (host, content-length and aiohttp's own included).
    assert lean.headers == sdk.headers
    assert sdk.headers["authorization"] == "Bearer sk-ant-test-key"
    assert sdk.headers["x-stainless-raw-response"] == ("raw" if call == "complete" else "stream")
    assert lean.raw == sdk.raw
    assert lean.body == sdk.body and ("stream" in sdk.body) == (call == "stream")


# --- the same results -----------------------------------------------------------------------

REPLIES = {
    "text": ScriptedReply(text="Quantum computing leverages qubits.", input_tokens=4),
    "tool_use": ScriptedReply(
        text="Checking.",
        tool_calls=[
            FakeToolUse("get_weather", {"city": "Paris", "days": [1, 2.5]}, "toolu_a"),
            FakeToolUse("get_weather", {"city": "Zürich"}, "toolu_b"),
        ],
        cache_read_input_tokens=3,
        cache_creation_input_tokens=2,
    ),
    "tool_only": ScriptedReply(text="", tool_calls=[FakeToolUse("get_weather", {}, "toolu_c")]),
}


@pytest.mark.parametrize("call", ["complete", "stream"])
@pytest.mark.parametrize("reply", sorted(REPLIES))
async def test_same_results(
    fake: FakeAnthropic, pair: dict[Transport, AnthropicProvider], call: Call, reply: str
) -> None:
    results = []
    for transport in TRANSPORTS:
        fake.script(REPLIES[reply])
        results.append(await run(pair[transport], call, params(tools=(WEATHER,))))
    assert results[0] == results[1]
    assert results[0]  # a Completion, or a non-empty event list


# --- the same failures ----------------------------------------------------------------------


@dataclass
class Outcome:
    """What a failed call raised, with the fake's random request id masked."""

    domain: tuple[type[ChatplaneError], str, str, dict[str, str]]
    classified: tuple[bool, float | None]
    sdk: tuple[type[BaseException], str, int | None, str | None, str | None, object]
    events: list[ProviderEvent]
    request_id: bool  # whether the SDK error carries the response's request-id


def _mask(value: object, request_id: str | None) -> object:
    if request_id is None:
        return value
    if isinstance(value, str):
        return value.replace(request_id, "req_X")
    if isinstance(value, dict):
        return {k: _mask(v, request_id) for k, v in value.items()}
    return value


async def outcome(provider: AnthropicProvider, call: Call) -> Outcome:
    events: list[ProviderEvent] = []
    with pytest.raises(ChatplaneError) as info:
        if call == "complete":
            await provider.complete(params("one two three four five"))
        else:
            async for event in provider.stream(params("one two three four five")):
                events.append(event)
    error = info.value
    cause = error.__cause__
    assert cause is not None
    failure = classify(cause)
    status = getattr(cause, "status_code", None)
    request_id = getattr(cause, "request_id", None)
    return Outcome(
        domain=(type(error), error.reason, str(error), dict(error.metadata)),
        classified=(failure.retryable, failure.retry_after),
        sdk=(
            type(cause),
            typing.cast(str, _mask(str(cause), request_id)),
            status,
            getattr(cause, "type", None),
            getattr(cause, "api_message", None),
            _mask(getattr(cause, "body", None), request_id),
        ),
        events=events,
        request_id=request_id is not None,
    )


async def both(
    run_one: Callable[[Transport], Awaitable[Outcome]],
) -> tuple[Outcome, Outcome]:
    return await run_one("lean"), await run_one("sdk")


@pytest.mark.parametrize("call", ["complete", "stream"])
@pytest.mark.parametrize(
    ("status", "retry_after"),
    [(400, None), (404, None), (413, None), (429, "7"), (500, None), (504, None), (529, None)],
)
async def test_same_status_errors(
    fake: FakeAnthropic,
    pair: dict[Transport, AnthropicProvider],
    call: Call,
    status: int,
    retry_after: str | None,
) -> None:
    async def one(transport: Transport) -> Outcome:
        fake.fail_next(status, retry_after=retry_after)
        return await outcome(pair[transport], call)

    lean, sdk = await both(one)
    assert lean == sdk
    assert sdk.sdk[2] == status and sdk.sdk[0] is not anthropic.APIStatusError  # a subclass
    assert sdk.request_id


@pytest.mark.parametrize("call", ["complete", "stream"])
async def test_same_auth_error(fake: FakeAnthropic, call: Call) -> None:
    async def one(transport: Transport) -> Outcome:
        provider = make(fake.base_url, transport, key="sk-ant-wrong", max_retries=0)
        try:
            return await outcome(provider, call)
        finally:
            await provider.aclose()

    lean, sdk = await both(one)
    assert lean == sdk and sdk.sdk[0] is anthropic.AuthenticationError


@pytest.mark.parametrize("mode", ["error", "cut"])
async def test_same_broken_stream(
    fake: FakeAnthropic,
    pair: dict[Transport, AnthropicProvider],
    mode: typing.Literal["error", "cut"],
) -> None:
    async def one(transport: Transport) -> Outcome:
        fake.break_next_stream(after_deltas=2, mode=mode)
        return await outcome(pair[transport], "stream")

    lean, sdk = await both(one)
    assert lean == sdk
    assert len(sdk.events) == 3  # the usage and two deltas arrived before the break


@pytest.mark.parametrize("call", ["complete", "stream"])
@pytest.mark.parametrize(
    "reply",
    [
        RawReply(b"<html>bad gateway</html>", status=502, content_type="text/html"),
        RawReply(b"not json at all", status=429, content_type="application/json"),
        RawReply(b"", status=503, content_type="application/json"),
        RawReply(b"<html>oops</html>", content_type="text/html"),  # a 200 that is not JSON
        RawReply(b"event: message_start\ndata: {not json\n\n"),
    ],
    ids=["html-502", "garbage-429", "empty-503", "html-200", "bad-sse-200"],
)
async def test_same_malformed_bodies(call: Call, reply: RawReply) -> None:
    async with RawUpstream(reply) as upstream:

        async def one(transport: Transport) -> Outcome:
            provider = make(upstream.base_url, transport, max_retries=0)
            try:
                return await outcome(provider, call)
            finally:
                await provider.aclose()

        lean, sdk = await both(one)
    assert lean == sdk


@pytest.mark.parametrize("call", ["complete", "stream"])
async def test_same_connection_refused(call: Call) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"

        async def one(transport: Transport) -> Outcome:
            provider = make(url, transport, max_retries=0)
            try:
                return await outcome(provider, call)
            finally:
                await provider.aclose()

        lean, sdk = await both(one)
    assert lean == sdk and sdk.sdk[0] is anthropic.APIConnectionError


@pytest_asyncio.fixture
async def silent_upstream() -> AsyncIterator[str]:
    """Accepts requests and never answers (until the client goes away)."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_post("/v1/messages", handle)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.parametrize("call", ["complete", "stream"])
async def test_same_timeout(silent_upstream: str, call: Call) -> None:
    async def one(transport: Transport) -> Outcome:
        provider = make(silent_upstream, transport, max_retries=0, timeout=0.2)
        try:
            return await outcome(provider, call)
        finally:
            await provider.aclose()

    lean, sdk = await both(one)
    assert lean == sdk and sdk.sdk[0] is anthropic.APITimeoutError


# --- selection ------------------------------------------------------------------------------


async def test_lean_is_the_default_and_the_registry_passes_the_choice(fake: FakeAnthropic) -> None:
    default = AnthropicProvider(fake.api_key, fake.base_url)
    assert default.transport == "lean"
    await default.aclose()
    for transport in TRANSPORTS:
        registry = ProviderRegistry(
            local=LocalProvider(), anthropic_base_url=fake.base_url, transport=transport
        )
        provider = registry.get("anthropic", fake.api_key)
        assert isinstance(provider, AnthropicProvider) and provider.transport == transport
        assert (await provider.complete(params("hi"))).content == "Echo: hi"
        await registry.aclose()


async def test_tracing_keeps_the_sdk_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK's span per request exists only on its path.
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    provider = AnthropicProvider("sk-ant-x", "http://127.0.0.1:9", transport="lean")
    assert provider.transport == "sdk"
    await provider.aclose()
