"""A fake Anthropic Messages API server (aiohttp) that speaks the real wire format.

`POST /v1/messages` answers JSON, or with `"stream": true` the exact SSE sequence of the
API: message_start, content_block_start / content_block_delta (text_delta or
input_json_delta) / content_block_stop per block, a ping, message_delta (stop_reason,
cumulative usage), message_stop. Errors use the API's body
`{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}`.

Per test: `script()` queues replies (text, tool calls, token counts), `chunk_delay` spaces
SSE events, `fail_next()` answers the next requests with 429/529/500/..., and
`break_next_stream()` breaks the next stream after a few deltas (an in-stream `error`
event, or a cut connection). `requests` records every request (parsed JSON + headers).

Auth: the key is read from `x-api-key` or, as the SDK 2.x sends it, `Authorization:
Bearer`; `x-api-key` wins when both are present, as with the real API. Like API
version 2026-10-21, sampling parameters (temperature, top_p, top_k) are rejected.

`FakeAnthropicThread` runs a server in its own thread and event loop (benchmarks, sync code).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_CHUNK_RE = re.compile(r"\s*\S+")  # one SSE text delta per word, with its leading space

ERROR_KINDS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ERROR_MESSAGES = {
    "rate_limit_error": "Number of requests has exceeded your rate limit.",
    "overloaded_error": "Overloaded",
    "api_error": "Internal server error",
    "authentication_error": "invalid x-api-key",
    "invalid_request_error": "Invalid request",
}


@dataclass
class FakeToolUse:
    name: str
    input: dict[str, Any]
    id: str = ""  # generated when empty


@dataclass
class ScriptedReply:
    """One reply. None fields are filled deterministically from the request."""

    text: str | None = None
    tool_calls: list[FakeToolUse] = field(default_factory=list)
    stop_reason: str | None = None  # default: "tool_use" with tool calls, else "end_turn"
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any]
    method: str = "POST"
    query: str = ""  # the raw query string
    raw: bytes = b""  # the body as sent


@dataclass
class _Fault:
    kind: Literal["status", "break"]
    status: int = 500
    retry_after: str | None = None
    message: str | None = None
    after_deltas: int = 2
    mode: Literal["error", "cut"] = "error"


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def error_body(kind: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""


def default_reply_text(body: dict[str, Any]) -> str:
    """Deterministic text for a request: an echo of the last user text."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            said = _text_of(message.get("content")).strip()
            if said:
                return f"Echo: {said}"
    return "Echo: (no text)"


def count_input_tokens(body: dict[str, Any]) -> int:
    """A deterministic stand-in for the real count: tokens of system + messages + tools JSON."""
    parts = {k: body.get(k) for k in ("system", "messages", "tools")}
    return len(_TOKEN_RE.findall(json.dumps(parts, sort_keys=True)))


class FakeAnthropic:
    def __init__(self, api_key: str = "sk-ant-test-key", *, chunk_delay: float = 0.0) -> None:
        self.api_key = api_key
        self.chunk_delay = chunk_delay  # seconds between SSE events
        self.replies: deque[ScriptedReply] = deque()
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0  # streams whose client went away before the end
        self.disconnected = asyncio.Event()
        self.streams_completed = 0
        self._faults: deque[_Fault] = deque()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- control -------------------------------------------------------------------------

    def script(self, *replies: ScriptedReply) -> None:
        """Queue replies for the next successful requests (then back to the default echo)."""
        self.replies.extend(replies)

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: str | None = "0",
        message: str | None = None,
    ) -> None:
        """Answer the next `times` requests with `status` (429 carries retry-after)."""
        for _ in range(times):
            self._faults.append(
                _Fault("status", status=status, retry_after=retry_after, message=message)
            )

    def break_next_stream(
        self, *, after_deltas: int = 2, mode: Literal["error", "cut"] = "error", times: int = 1
    ) -> None:
        """Break the next streams after `after_deltas` deltas: an `event: error`
        (overloaded_error) or a cut connection."""
        for _ in range(times):
            self._faults.append(_Fault("break", after_deltas=after_deltas, mode=mode))

    def clear_faults(self) -> None:
        """Drop injected faults that were not used up."""
        self._faults.clear()

    @property
    def request_count(self) -> int:
        return len(self.requests)

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        # handler_cancellation: a client that disconnects cancels the handler at once,
        # so an abandoned stream is noticed even while the server sleeps between events.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeAnthropic:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- handler -------------------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        request_id = _new_id("req_")
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(
            RecordedRequest(
                request.path,
                headers,
                body or {},
                method=request.method,
                query=request.query_string,
                raw=raw,
            )
        )

        if not isinstance(body, dict):
            return self._error(400, request_id, "Request body must be a JSON object")
        key = headers.get("x-api-key")
        if key is None and headers.get("authorization", "").lower().startswith("bearer "):
            key = headers["authorization"][7:]
        if key != self.api_key:
            return self._error(401, request_id)
        if "anthropic-version" not in headers:
            return self._error(400, request_id, "anthropic-version: header is required")

        stream = body.get("stream") is True
        fault = None
        if self._faults and (self._faults[0].kind == "status" or stream):
            fault = self._faults.popleft()
        if fault is not None and fault.kind == "status":
            return self._error(fault.status, request_id, fault.message, fault.retry_after)

        problem = self._validate(body)
        if problem:
            return self._error(400, request_id, problem)

        reply = self.replies.popleft() if self.replies else ScriptedReply()
        text = default_reply_text(body) if reply.text is None else reply.text
        tools = [FakeToolUse(t.name, t.input, t.id or _new_id("toolu_")) for t in reply.tool_calls]
        stop_reason = reply.stop_reason or ("tool_use" if tools else "end_turn")
        text_chunks = _CHUNK_RE.findall(text)
        tool_chunks = [_split3(json.dumps(t.input)) for t in tools]
        usage = {
            "input_tokens": (
                count_input_tokens(body) if reply.input_tokens is None else reply.input_tokens
            ),
            "output_tokens": (
                len(text_chunks) + sum(len(c) for c in tool_chunks)
                if reply.output_tokens is None
                else reply.output_tokens
            ),
            "cache_creation_input_tokens": reply.cache_creation_input_tokens,
            "cache_read_input_tokens": reply.cache_read_input_tokens,
        }
        message = {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        if not stream:
            content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            content += [
                {"type": "tool_use", "id": t.id, "name": t.name, "input": t.input} for t in tools
            ]
            message.update(content=content, stop_reason=stop_reason)
            return web.json_response(message, headers={"request-id": request_id})
        return await self._stream(
            request,
            request_id=request_id,
            message=message,
            text_chunks=text_chunks,
            tools=tools,
            tool_chunks=tool_chunks,
            stop_reason=stop_reason,
            fault=fault,
        )

    def _validate(self, body: dict[str, Any]) -> str | None:
        for name in ("temperature", "top_p", "top_k"):
            if name in body:
                return f"{name}: Extra inputs are not permitted"
        if not isinstance(body.get("model"), str):
            return "model: Field required"
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return "max_tokens: Field required"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages: at least one message is required"
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
                return f"messages.{i}.role: Input should be 'user' or 'assistant'"
            if i and messages[i - 1].get("role") == m.get("role"):
                return "messages: roles must alternate between user and assistant"
        return None

    def _error(
        self,
        status: int,
        request_id: str,
        message: str | None = None,
        retry_after: str | None = None,
    ) -> web.Response:
        kind = ERROR_KINDS.get(status, "api_error")
        headers = {"request-id": request_id}
        if status == 429 and retry_after is not None:
            headers["retry-after"] = retry_after
        text = message or _ERROR_MESSAGES.get(kind, kind)
        return web.json_response(error_body(kind, text, request_id), status=status, headers=headers)

    async def _stream(
        self,
        request: web.Request,
        *,
        request_id: str,
        message: dict[str, Any],
        text_chunks: list[str],
        tools: list[FakeToolUse],
        tool_chunks: list[list[str]],
        stop_reason: str,
        fault: _Fault | None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                "request-id": request_id,
            }
        )
        await response.prepare(request)
        first = True
        deltas = 0

        async def send(event: str, data: dict[str, Any]) -> None:
            nonlocal first
            if not first and self.chunk_delay > 0:
                await asyncio.sleep(self.chunk_delay)
            first = False
            await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

        async def delta(index: int, payload: dict[str, Any]) -> bool:
            """Send one content delta; False when the injected fault broke the stream."""
            nonlocal deltas
            if fault is not None and deltas >= fault.after_deltas:
                if fault.mode == "error":
                    await send("error", error_body("overloaded_error", "Overloaded", request_id))
                    await response.write_eof()
                else:
                    assert request.transport is not None
                    request.transport.abort()  # no chunked terminator: a truncated body
                return False
            deltas += 1
            await send(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": payload},
            )
            return True

        usage = message["usage"]
        try:
            await send("message_start", {"type": "message_start", "message": message})
            index = 0
            if text_chunks:
                await send(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
                await send("ping", {"type": "ping"})
                for chunk in text_chunks:
                    if not await delta(index, {"type": "text_delta", "text": chunk}):
                        return response
                await send("content_block_stop", {"type": "content_block_stop", "index": index})
                index += 1
            for tool, chunks in zip(tools, tool_chunks, strict=True):
                await send(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {
                            "type": "tool_use",
                            "id": tool.id,
                            "name": tool.name,
                            "input": {},
                        },
                    },
                )
                # The API opens each tool input with an empty partial_json.
                for piece in ["", *chunks]:
                    payload = {"type": "input_json_delta", "partial_json": piece}
                    if not await delta(index, payload):
                        return response
                await send("content_block_stop", {"type": "content_block_stop", "index": index})
                index += 1
            await send(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": usage,  # cumulative, as the current API sends it
                },
            )
            await send("message_stop", {"type": "message_stop"})
            await response.write_eof()
            self.streams_completed += 1
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnects += 1
            self.disconnected.set()
            raise
        return response


def _split3(text: str) -> list[str]:
    """Split JSON text into up to three fragments, as input_json_delta pieces."""
    size = max(1, -(-len(text) // 3))
    return [text[i : i + size] for i in range(0, len(text), size)]


class FakeAnthropicThread:
    """Runs a FakeAnthropic in a thread with its own event loop (for sync code, benchmarks).

    with FakeAnthropicThread() as fake:
        ... fake.base_url ...
    """

    def __init__(self, fake: FakeAnthropic | None = None) -> None:
        self.fake = fake or FakeAnthropic()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> FakeAnthropic:
        self._thread = threading.Thread(target=self._run, name="fake-anthropic", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake Anthropic server did not start")
        if self._error is not None:
            raise RuntimeError("fake Anthropic server failed to start") from self._error
        return self.fake

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Signal the loop with an Event rather than running stop() across threads.
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.fake.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.fake.stop()
