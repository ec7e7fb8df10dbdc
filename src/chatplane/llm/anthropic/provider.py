"""Anthropic Messages API provider, on the official SDK with its aiohttp transport.

The SDK's own retries are off (`max_retries=0`): this module retries 429/5xx/529,
connection errors and timeouts itself, and only before the first event has reached the
caller; once a token has been delivered a failure is raised at once, because replaying
the request would duplicate output. `stream()` and `complete()` share that one retry path
and the one set of SDK call arguments.

Two transports send the request (issue 15):
- `lean` (the default): `transport.LeanTransport`, plain aiohttp with the headers and URL
  built once per credential and the body serialized once per call; it sends what the SDK
  sends and raises the SDK's exceptions.
- `sdk`: the SDK makes every call, through `with_raw_response` and
  `with_streaming_response`. It is also used, whatever the setting, while OpenTelemetry
  tracing is configured (`sdk_tracing`): the SDK's span per request and trace-context
  propagation exist only on its path.
Either way the body is read here: JSON as plain dicts, SSE with
`chatplane.kit.sse.SSEParser` (the SDK's pydantic models and SSE decoding cost about
0.3 ms of CPU per call and 0.6 ms per stream).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from typing import Literal, TypedDict, TypeVar, cast

import anthropic
from anthropic import types as at
from opentelemetry import trace

from chatplane.kit import otel_env
from chatplane.kit.retry import Backoff
from chatplane.kit.sse import SSEParser
from chatplane.llm.anthropic.errors import (
    UPSTREAM_EXCEPTIONS,
    BadResponse,
    IncompleteStream,
    classify,
    describe,
)
from chatplane.llm.anthropic.request import AnthropicRequest, build_request
from chatplane.llm.anthropic.response import StreamMapper, completion_from_body
from chatplane.llm.anthropic.transport import LeanTransport, OpenStream, encode_body
from chatplane.llm.types import Completion, CompletionParams, ProviderEvent

log = logging.getLogger(__name__)

T = TypeVar("T")


class CreateArguments(TypedDict):
    """Keyword arguments of `client.messages.create` (either response flavour)."""

    model: str
    max_tokens: int
    messages: list[at.MessageParam]
    system: str | anthropic.Omit
    tools: list[at.ToolParam] | anthropic.Omit
    timeout: anthropic.Timeout


# Beyond the standard tracing variables (kit/otel_env.py): a tracer provider named by
# the environment, and the SDK's own switch.
_SDK_VARIABLES = ("OTEL_PYTHON_TRACER_PROVIDER", "ANTHROPIC_OPEN_TELEMETRY")


def sdk_tracing(environ: Mapping[str, str] | None = None) -> Literal[False] | None:
    """The SDK client's `open_telemetry` option: `None` (the SDK's own rules, which read
    its ANTHROPIC_OPEN_TELEMETRY* variables) when OpenTelemetry is configured, `False`
    otherwise.

    Without it the SDK builds a span per request (attributes from the request body and
    headers, trace-context propagation) and only then finds that nothing records it:
    about 0.06 ms of CPU per call (docs/performance.md, issue 15). Configured means a
    tracing variable is set (an OTEL_TRACES_EXPORTER other than `none`, an OTLP
    endpoint, a tracer provider, the SDK's switch) or a real tracer provider is installed;
    the provider is built at a credential's first call, after start-up has set tracing up.
    """
    env = os.environ if environ is None else environ
    if otel_env.disabled(env):
        return False
    if otel_env.requested(env, _SDK_VARIABLES):
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return False
    return None


Transport = Literal["lean", "sdk"]


class AnthropicProvider:
    name: str = "anthropic"

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        *,
        max_retries: int = 2,
        timeout: float = 600.0,
        retry_base_delay: float = 0.2,
        max_retry_after: float = 10.0,
        transport: Transport = "lean",
    ) -> None:
        # A retry-after longer than max_retry_after is not waited for: the error goes to
        # the caller.
        self.backoff = Backoff(
            max_retries=max_retries, base_delay=retry_base_delay, max_retry_after=max_retry_after
        )
        self._timeout = anthropic.Timeout(timeout, connect=min(5.0, timeout))
        tracing = sdk_tracing()
        http_client = anthropic.DefaultAioHttpClient()
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            http_client=http_client,
            max_retries=0,
            timeout=self._timeout,
            open_telemetry=tracing,
        )
        # The SDK's path while tracing is on: only it records the span per request.
        self._lean = (
            LeanTransport(self._client, http_client, self._timeout)
            if transport == "lean" and tracing is False
            else None
        )

    @property
    def transport(self) -> Transport:
        """The transport in use."""
        return "sdk" if self._lean is None else "lean"

    async def aclose(self) -> None:
        if self._lean is not None:
            await self._lean.aclose()
        await self._client.close()

    def stream(self, params: CompletionParams) -> AsyncGenerator[ProviderEvent, None]:
        return self._with_retries(params, self._stream_attempt)

    async def complete(self, params: CompletionParams) -> Completion:
        async with aclosing(self._with_retries(params, self._complete_attempt)) as results:
            return await anext(results)

    def create_arguments(self, request: AnthropicRequest) -> CreateArguments:
        """The SDK call's arguments; `stream` is added by the streaming call alone.

        An explicit timeout also skips the SDK's refusal of non-streaming requests with a
        large max_tokens (it applies only with its default timeout).
        """
        return CreateArguments(
            model=request.model,
            max_tokens=request.max_tokens,
            messages=cast("list[at.MessageParam]", request.messages),
            system=request.system if request.system is not None else anthropic.omit,
            tools=cast("list[at.ToolParam]", request.tools) if request.tools else anthropic.omit,
            timeout=self._timeout,
        )

    async def _with_retries(
        self,
        params: CompletionParams,
        prepare: Callable[[AnthropicRequest], Callable[[], AsyncGenerator[T, None]]],
    ) -> AsyncGenerator[T, None]:
        """The items of the prepared attempt, retried on failure while none reached the
        caller. The request is built (and for the lean path serialized) once."""
        attempt_once = prepare(build_request(params))
        attempt = 0
        while True:
            delivered = False
            try:
                # Leaving these blocks closes the HTTP response: when the consumer stops
                # early or is cancelled, the upstream request is abandoned with it.
                async with aclosing(attempt_once()) as items:
                    async for item in items:
                        delivered = True
                        yield item
                return
            except UPSTREAM_EXCEPTIONS as exc:
                failure = classify(exc)
                delay = (
                    self.backoff.delay(attempt, failure.retry_after)
                    if failure.retryable and not delivered
                    else None
                )
                if delay is None:
                    raise failure.error from exc
                log.warning(
                    "anthropic request attempt %d failed (%s: %s); retrying in %.2fs",
                    attempt + 1,
                    failure.error.reason,
                    describe(exc),
                    delay,
                )
            await asyncio.sleep(delay)
            attempt += 1

    # --- one attempt ----------------------------------------------------------------------

    def _stream_attempt(
        self, request: AnthropicRequest
    ) -> Callable[[], AsyncGenerator[ProviderEvent, None]]:
        lean = self._lean
        if lean is not None:
            body = encode_body(request, stream=True)
            return lambda: self._stream_once(lambda: lean.stream(body))
        arguments = self.create_arguments(request)
        return lambda: self._stream_once(lambda: self._sdk_stream(arguments))

    def _complete_attempt(
        self, request: AnthropicRequest
    ) -> Callable[[], AsyncGenerator[Completion, None]]:
        lean = self._lean
        if lean is not None:
            body = encode_body(request, stream=False)
            return lambda: self._complete_once(lambda: lean.complete(body))
        arguments = self.create_arguments(request)
        return lambda: self._complete_once(lambda: self._sdk_complete(arguments))

    @asynccontextmanager
    async def _sdk_stream(self, arguments: CreateArguments) -> AsyncGenerator[OpenStream, None]:
        async with self._client.messages.with_streaming_response.create(
            **arguments, stream=True
        ) as raw:
            response = raw.http_response
            async with aclosing(response.aiter_bytes()) as chunks:
                yield OpenStream(chunks, lambda: response)

    async def _sdk_complete(self, arguments: CreateArguments) -> bytes:
        raw = await self._client.messages.with_raw_response.create(**arguments)
        return await raw.read()

    async def _stream_once(
        self, open_stream: Callable[[], AbstractAsyncContextManager[OpenStream]]
    ) -> AsyncGenerator[ProviderEvent, None]:
        mapper = StreamMapper()
        try:
            async with open_stream() as opened:
                response = opened.http_response
                parser = SSEParser()
                async for chunk in opened.chunks:
                    for event_name, data in parser.feed(chunk):
                        if (event := mapper.feed(event_name, data, response)) is not None:
                            yield event
                for event_name, data in parser.close():
                    if (event := mapper.feed(event_name, data, response)) is not None:
                        yield event
                if not mapper.finished:
                    raise IncompleteStream
        except UPSTREAM_EXCEPTIONS:
            if not mapper.finished:
                raise
            # Finish was delivered; a late transport error changes nothing.

    async def _complete_once(
        self, send: Callable[[], Awaitable[bytes]]
    ) -> AsyncGenerator[Completion, None]:
        data = await send()
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise BadResponse("Messages response body is not JSON") from exc
        yield completion_from_body(body)
