"""Anthropic Messages API provider, on the official SDK with its aiohttp transport.

The SDK's own retries are off (`max_retries=0`): this module retries 429/5xx/529,
connection errors and timeouts itself, and only before the first event has reached the
caller; once a token has been delivered a failure is raised at once, because replaying
the request would duplicate output.

Raw responses: the SDK still makes every call (client, auth and version headers, base
URL, timeouts, non-2xx -> `APIStatusError`), but through `with_raw_response` and
`with_streaming_response`, and this module reads the body itself: JSON as plain dicts,
SSE with the small `SSEParser` below. The SDK's pydantic models (the Message, one object
per stream event) and its SSE decoding cost about 0.3 ms of CPU per call and 0.6 ms per
stream; what remains over plain aiohttp (about 0.7 ms) is the SDK building the request.

Notes on SDK 2.x / API version 2026-10-21 (what the SDK sends):
- sampling parameters (temperature, top_p, top_k) are gone from the SDK and the API
  rejects them with 400 even at their defaults, so `CompletionParams.temperature` is not
  sent upstream;
- an `event: error` inside a 200 stream is raised here as the `APIStatusError` the SDK
  would raise (`status_code == 200`; the error kind only in `exc.type`);
- transport failures while reading a stream body are raw `httpx2` exceptions (not
  wrapped in `APIConnectionError`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, cast

import anthropic
import httpx2  # the SDK's HTTP layer; stream-body read errors surface as its exceptions
from anthropic import types as at

from chatplane.errors import (
    ChatplaneError,
    DeadlineExceeded,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from chatplane.llm.types import (
    Completion,
    CompletionParams,
    Finish,
    Message,
    ProviderEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    UsageUpdate,
)

log = logging.getLogger(__name__)

# Content parts already in Anthropic's shape, passed through untouched.
_PASSTHROUGH_PARTS = frozenset({"image", "document"})


# --- request conversion ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnthropicRequest:
    """The Messages API body built from CompletionParams (minus `stream`)."""

    model: str
    max_tokens: int
    system: str | None
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]


def build_request(params: CompletionParams) -> AnthropicRequest:
    system, messages = convert_messages(params.messages)
    # params.temperature is deliberately dropped: see the module docstring.
    return AnthropicRequest(
        model=params.model,
        max_tokens=params.max_tokens,
        system=system,
        messages=messages,
        tools=convert_tools(params.tools),
    )


def convert_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for tool in tools:
        spec: dict[str, Any] = {
            "name": tool.name,
            "input_schema": tool.parameters or {"type": "object", "properties": {}},
        }
        if tool.description:
            spec["description"] = tool.description
        out.append(spec)
    return out


def convert_messages(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """OpenAI-like messages -> (system text, Anthropic messages).

    System messages become the `system` parameter; tool messages become user turns with a
    `tool_result` block; assistant tool calls become `tool_use` blocks; consecutive turns of
    the same role are merged (the API wants user and assistant to alternate).
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if m.role == "system":
            text = "\n".join(
                b["text"] for b in _content_blocks(m.content, where) if b["type"] == "text"
            )
            if text:
                system.append(text)
            continue
        if m.role == "tool":
            if not m.tool_call_id:
                raise InvalidArgument(
                    "A tool message needs the tool_call_id it answers",
                    field=f"{where}.tool_call_id",
                )
            role = "user"
            result: str | list[dict[str, Any]] = (
                m.content if isinstance(m.content, str) else _content_blocks(m.content, where)
            )
            blocks = [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": result}]
        elif m.role in ("user", "assistant"):
            role = m.role
            blocks = _content_blocks(m.content, where)
            if m.tool_calls:
                if m.role != "assistant":
                    raise InvalidArgument(
                        "Only assistant messages carry tool_calls", field=f"{where}.tool_calls"
                    )
                blocks += [
                    _tool_use_block(c, f"{where}.tool_calls[{j}]")
                    for j, c in enumerate(m.tool_calls)
                ]
        else:
            raise InvalidArgument(
                f"Unknown role {m.role!r}; expected system, user, assistant or tool",
                field=f"{where}.role",
            )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidArgument(
            "messages needs at least one user or assistant message", field="messages"
        )
    for turn in turns:
        if turn["role"] == "user":
            # tool_result blocks must open the user turn that answers the tool calls.
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return ("\n\n".join(system) or None), turns


def _content_blocks(content: str | list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        # The API rejects empty or whitespace-only text blocks.
        return [{"type": "text", "text": content}] if content.strip() else []
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        field_name = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidArgument("A text part needs a string text", field=field_name)
            if text.strip():
                block: dict[str, Any] = {"type": "text", "text": text}
                if "cache_control" in part:
                    block["cache_control"] = part["cache_control"]
                blocks.append(block)
        elif kind in _PASSTHROUGH_PARTS:
            blocks.append(dict(part))
        elif kind == "image_url":
            blocks.append(_image_from_url_part(part, field_name))
        else:
            raise InvalidArgument(f"Unsupported content part type {kind!r}", field=field_name)
    return blocks


def _image_from_url_part(part: dict[str, Any], field_name: str) -> dict[str, Any]:
    """An OpenAI-style image_url part as an Anthropic image block (data: URL or http(s))."""
    raw = part.get("image_url")
    url = raw.get("url") if isinstance(raw, dict) else raw
    if not isinstance(url, str):
        raise InvalidArgument("An image_url part needs a url", field=field_name)
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not media_type:
            raise InvalidArgument("Only base64 data: URLs are supported", field=field_name)
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidArgument("An image url must be https:// or a data: URL", field=field_name)


def _tool_use_block(call: ToolCall, field_name: str) -> dict[str, Any]:
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError:
        raise InvalidArgument(
            "Tool call arguments must be JSON", field=f"{field_name}.arguments"
        ) from None
    if not isinstance(arguments, dict):
        raise InvalidArgument(
            "Tool call arguments must be a JSON object", field=f"{field_name}.arguments"
        )
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}


# --- error mapping --------------------------------------------------------------------------


class _IncompleteStream(Exception):
    """The upstream stream ended without message_stop."""


class _BadResponse(Exception):
    """A 2xx body (JSON or SSE event) that is not what the Messages API sends."""


@dataclass(frozen=True, slots=True)
class _Failure:
    error: ChatplaneError
    retryable: bool
    retry_after: float | None = None  # seconds, from the upstream response headers


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) * scale
        except ValueError:
            continue  # an HTTP-date: treat as absent
        if value >= 0:
            return value
    return None


def _unavailable() -> Unavailable:
    return Unavailable(
        "The model provider is unavailable or overloaded; try again later",
        reason="UPSTREAM_UNAVAILABLE",
    )


def _timeout() -> DeadlineExceeded:
    return DeadlineExceeded("The model provider did not answer in time", reason="UPSTREAM_TIMEOUT")


def _classify(exc: BaseException) -> _Failure:
    """Map an SDK / transport exception to a domain error and whether a retry may help."""
    if isinstance(exc, _IncompleteStream):
        return _Failure(_unavailable(), retryable=True)
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return _Failure(_timeout(), retryable=True)
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return _Failure(_unavailable(), retryable=True)
    if not isinstance(exc, anthropic.APIStatusError):
        return _Failure(
            Unavailable("The model provider sent an unexpected response", reason="UPSTREAM_ERROR"),
            retryable=False,
        )
    status = exc.status_code
    kind = exc.type or ""  # error.type of the body; the only signal for in-stream errors
    retry_after = _retry_after(exc.response.headers)
    if status == 429 or kind == "rate_limit_error":
        metadata = {"retry_after_seconds": f"{retry_after:g}"} if retry_after is not None else None
        return _Failure(
            ResourceExhausted(
                "The model provider is rate limiting requests; try again later",
                reason="UPSTREAM_RATE_LIMITED",
                metadata=metadata,
            ),
            retryable=True,
            retry_after=retry_after,
        )
    if status in (401, 403) or kind in ("authentication_error", "permission_error"):
        return _Failure(
            Unavailable(
                "Runtime not configured: the model provider rejected the configured credentials",
                reason="UPSTREAM_AUTH",
            ),
            retryable=False,
        )
    if status == 402 or kind == "billing_error":
        return _Failure(
            Unavailable(
                "Runtime not configured: the model provider account cannot be billed",
                reason="UPSTREAM_BILLING",
            ),
            retryable=False,
        )
    if status in (408, 504) or kind == "timeout_error":
        return _Failure(_timeout(), retryable=True, retry_after=retry_after)
    if status >= 500 or kind in ("api_error", "overloaded_error"):
        return _Failure(_unavailable(), retryable=True, retry_after=retry_after)
    if 400 <= status < 500 or kind:
        detail = exc.api_message or exc.message
        return _Failure(
            InvalidArgument(
                f"The model provider rejected the request: {detail}",
                reason="UPSTREAM_INVALID_REQUEST",
            ),
            retryable=False,
        )
    return _Failure(
        Unavailable("The model provider sent an unexpected response", reason="UPSTREAM_ERROR"),
        retryable=False,
    )


# Everything an upstream call can fail with; _classify decides what each one means.
_UPSTREAM_EXCEPTIONS = (anthropic.APIError, httpx2.HTTPError, _IncompleteStream, _BadResponse)


def _stream_error(data: bytes, response: httpx2.Response) -> anthropic.APIStatusError:
    """An in-stream `event: error` as the SDK raises it: APIStatusError with status 200."""
    body: object
    try:
        body = json.loads(data)
        message = f"{body}"
    except ValueError:
        body = data.decode("utf-8", "replace")
        message = body or f"Error code: {response.status_code}"
    return anthropic.APIStatusError(message, response=response, body=body)


# --- response parsing -----------------------------------------------------------------------


class SSEParser:
    """Incremental server-sent-events parser: bytes in, `(event, data)` frames out.

    Lines end with LF, CRLF or CR (also when split across chunks); a blank line ends a
    frame; multiple `data:` lines join with LF; comments and `id`/`retry` are ignored. A
    frame left unterminated at the end of the body is dropped, as the SSE spec says.
    """

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""  # the start of an unfinished line
        self._event = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            # A trailing CR is held back: it may be the first half of a CRLF.
            held = buffer.endswith(b"\r")
            if held:
                buffer = buffer[:-1]
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held:
                buffer += b"\r"
        *lines, self._buffer = buffer.split(b"\n")
        return self._frames(lines)

    def close(self) -> list[tuple[bytes, bytes]]:
        """Frames completed only by the end of the body (a held-back final CR)."""
        rest, self._buffer = self._buffer, b""
        return self._frames(rest.replace(b"\r", b"\n").split(b"\n")[:-1])

    def _frames(self, lines: list[bytes]) -> list[tuple[bytes, bytes]]:
        frames: list[tuple[bytes, bytes]] = []
        for line in lines:
            if not line:
                if self._data or self._event:
                    frames.append((self._event, b"\n".join(self._data)))
                    self._event = b""
                    self._data = []
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value)
            elif name == b"event":
                self._event = value
            # "" (a comment), id, retry and unknown fields are not used
        return frames


@dataclass(slots=True)
class _StreamMapper:
    """Turns SSE frames of a Messages stream into ProviderEvents, one frame at a time."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    cache_write: int = 0
    stop_reason: str | None = None
    finished: bool = False
    # content block index -> (tool_use id, name, argument fragments)
    tools: dict[int, tuple[str, str, list[str]]] = field(default_factory=dict)

    def feed(self, event: bytes, data: bytes, response: httpx2.Response) -> ProviderEvent | None:
        """The event for one frame, if any; raises APIStatusError for an error frame."""
        if event == b"error":
            raise _stream_error(data, response)
        if not data:
            return None
        try:
            return self._map(json.loads(data), response)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _BadResponse(f"unexpected stream event: {data[:200]!r}") from exc

    def _map(self, payload: dict[str, Any], response: httpx2.Response) -> ProviderEvent | None:
        kind = payload["type"]
        if kind == "content_block_delta":
            delta = payload["delta"]
            delta_kind = delta["type"]
            if delta_kind == "text_delta":
                text: str = delta["text"]
                return TextDelta(text) if text else None
            if delta_kind == "input_json_delta":
                tool = self.tools.get(payload["index"])
                fragment: str = delta["partial_json"]
                if tool is None or not fragment:
                    return None
                tool[2].append(fragment)
                return ToolCallDelta(tool[0], fragment)
            return None  # thinking, signature and citation deltas are not surfaced
        if kind == "content_block_start":
            block = payload["content_block"]
            if block["type"] == "tool_use":
                self.tools[payload["index"]] = (block["id"], block["name"], [])
                return ToolCallStart(block["id"], block["name"])
            return None
        if kind == "content_block_stop":
            stopped = self.tools.pop(payload["index"], None)
            if stopped is None:
                return None
            call_id, name, parts = stopped
            return ToolCallEnd(call_id, name, "".join(parts) or "{}")
        if kind == "message_start":
            usage = payload["message"]["usage"]
            self.input_tokens = usage["input_tokens"]
            self.output_tokens = usage["output_tokens"]
            self.cache_read = usage.get("cache_read_input_tokens") or 0
            self.cache_write = usage.get("cache_creation_input_tokens") or 0
            # Known input from the start: a stream cut short still accounts for it.
            return UsageUpdate(self.input_tokens, self.output_tokens)
        if kind == "message_delta":
            # message_delta usage is cumulative; input counts appear there only sometimes.
            usage = payload["usage"]
            self.output_tokens = usage["output_tokens"]
            if (value := usage.get("input_tokens")) is not None:
                self.input_tokens = value
            if (value := usage.get("cache_read_input_tokens")) is not None:
                self.cache_read = value
            if (value := usage.get("cache_creation_input_tokens")) is not None:
                self.cache_write = value
            if (stop_reason := payload["delta"].get("stop_reason")) is not None:
                self.stop_reason = stop_reason
            return UsageUpdate(self.input_tokens, self.output_tokens)
        if kind == "message_stop":
            self.finished = True
            return Finish(
                finish_reason=self.stop_reason or "end_turn",
                input_tokens=self.input_tokens,
                output_tokens=self.output_tokens,
                cache_read_tokens=self.cache_read,
                cache_write_tokens=self.cache_write,
            )
        if kind == "error":  # an error frame under another event name
            raise anthropic.APIStatusError(f"{payload}", response=response, body=payload)
        return None  # ping, and event types newer than this module


def completion_from_body(body: Any) -> Completion:
    """A Completion from the JSON body of a non-streaming Messages response."""
    try:
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in body["content"]:
            kind = block["type"]
            if kind == "text":
                text.append(block["text"])
            elif kind == "tool_use":
                calls.append(ToolCall(block["id"], block["name"], json.dumps(block["input"])))
        usage = body["usage"]
        return Completion(
            content="".join(text),
            tool_calls=tuple(calls),
            finish_reason=body.get("stop_reason") or "end_turn",
            input_tokens=usage["input_tokens"],
            output_tokens=usage["output_tokens"],
            cache_read_tokens=usage.get("cache_read_input_tokens") or 0,
            cache_write_tokens=usage.get("cache_creation_input_tokens") or 0,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise _BadResponse("unexpected Messages response body") from exc


# --- provider -------------------------------------------------------------------------------


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
    ) -> None:
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        # A retry-after longer than this is not waited for: the error goes to the caller.
        self.max_retry_after = max_retry_after
        self._timeout = anthropic.Timeout(timeout, connect=min(5.0, timeout))
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            http_client=anthropic.DefaultAioHttpClient(),
            max_retries=0,
            timeout=self._timeout,
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def stream(self, params: CompletionParams) -> AsyncGenerator[ProviderEvent, None]:
        request = build_request(params)
        attempt = 0
        while True:
            yielded = False
            mapper = _StreamMapper()
            try:
                # Leaving these blocks closes the HTTP response: when the consumer stops
                # early or is cancelled, the upstream request is abandoned with it.
                async with self._client.messages.with_streaming_response.create(
                    model=request.model,
                    max_tokens=request.max_tokens,
                    messages=cast("list[at.MessageParam]", request.messages),
                    system=request.system if request.system is not None else anthropic.omit,
                    tools=cast("list[at.ToolParam]", request.tools)
                    if request.tools
                    else anthropic.omit,
                    stream=True,
                    timeout=self._timeout,
                ) as raw:
                    response = raw.http_response
                    parser = SSEParser()
                    async with aclosing(response.aiter_bytes()) as chunks:
                        async for chunk in chunks:
                            for event_name, data in parser.feed(chunk):
                                event = mapper.feed(event_name, data, response)
                                if event is not None:
                                    yielded = True
                                    yield event
                    for event_name, data in parser.close():
                        event = mapper.feed(event_name, data, response)
                        if event is not None:
                            yielded = True
                            yield event
                    if not mapper.finished:
                        raise _IncompleteStream
                return
            except _UPSTREAM_EXCEPTIONS as exc:
                if mapper.finished:
                    return  # Finish was delivered; a late transport error changes nothing
                failure = _classify(exc)
                delay = None if yielded else self._retry_delay(attempt, failure)
                if delay is None:
                    raise failure.error from exc
                log.warning(
                    "anthropic stream attempt %d failed (%s); retrying in %.2fs",
                    attempt + 1,
                    failure.error.reason,
                    delay,
                )
            await asyncio.sleep(delay)
            attempt += 1

    async def complete(self, params: CompletionParams) -> Completion:
        request = build_request(params)
        attempt = 0
        while True:
            try:
                # An explicit timeout also skips the SDK's refusal of non-streaming requests
                # with a large max_tokens (it applies only with its default timeout).
                raw = await self._client.messages.with_raw_response.create(
                    model=request.model,
                    max_tokens=request.max_tokens,
                    messages=cast("list[at.MessageParam]", request.messages),
                    system=request.system if request.system is not None else anthropic.omit,
                    tools=cast("list[at.ToolParam]", request.tools)
                    if request.tools
                    else anthropic.omit,
                    timeout=self._timeout,
                )
                try:
                    body = json.loads(await raw.read())
                except ValueError as exc:
                    raise _BadResponse("Messages response body is not JSON") from exc
                return completion_from_body(body)
            except _UPSTREAM_EXCEPTIONS as exc:
                failure = _classify(exc)
                delay = self._retry_delay(attempt, failure)
                if delay is None:
                    raise failure.error from exc
                log.warning(
                    "anthropic request attempt %d failed (%s); retrying in %.2fs",
                    attempt + 1,
                    failure.error.reason,
                    delay,
                )
            await asyncio.sleep(delay)
            attempt += 1

    def _retry_delay(self, attempt: int, failure: _Failure) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if not failure.retryable or attempt >= self.max_retries:
            return None
        # Exponential backoff (0.2 s, 0.4 s, ...) with +-20% jitter against retry storms.
        backoff = self.retry_base_delay * (2.0**attempt) * random.uniform(0.8, 1.2)
        if failure.retry_after is None:
            return backoff
        if failure.retry_after > self.max_retry_after:
            return None
        return max(backoff, failure.retry_after)
