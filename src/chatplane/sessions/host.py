"""The runtime's host for one turn: model calls through the chat providers (metered, rate
limited), http tools, and streaming of what happens to an optional listener.

Usage rows are collected, not written: the turn stores them in its own transaction with
the messages, the state and the trace events.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from chatplane.chat.metering import Meter
from chatplane.chat.service import ChatService
from chatplane.errors import Unavailable
from chatplane.lang import ir
from chatplane.llm.types import (
    CompletionParams,
    Finish,
    Message,
    TextDelta,
    ToolCall,
    ToolCallEnd,
    ToolSpec,
    UsageUpdate,
)
from chatplane.observability import metrics, tracing
from chatplane.ratelimit import RateLimiter, admit
from chatplane.runtime import ModelRequest, ModelResult, StreamItem, ToolCallRequest, ToolResult
from chatplane.sessions.http_tools import HttpTools
from chatplane.sessions.types import Attachment
from chatplane.usage.types import UsageRow

Listener = Callable[[Any], Awaitable[None]]
MAX_MODEL_TOKENS = 4096


def _message(raw: dict[str, Any]) -> Message:
    calls = tuple(
        ToolCall(str(c.get("id", "")), str(c.get("name", "")), str(c.get("arguments", "{}")))
        for c in raw.get("tool_calls") or ()
    )
    content = raw.get("content")
    return Message(
        role=str(raw.get("role", "user")),
        content=content if isinstance(content, str) else json.dumps(content),
        tool_call_id=str(raw.get("tool_call_id") or ""),
        tool_calls=calls,
    )


MAX_INLINE_TEXT = 100_000  # characters of a text attachment sent inline


def attachment_parts(message: str, attachments: Sequence[Attachment]) -> list[dict[str, Any]]:
    """The message and its files as content parts: PDFs as document blocks, images as
    image blocks (base64), text inline; anything else named only. Each file is also named
    in a text part, so a model that cannot see it (the local one) still acknowledges it."""
    parts: list[dict[str, Any]] = [{"type": "text", "text": message}]
    for a in attachments:
        label = f"[Attachment {a.filename} ({a.mime_type}, {a.size_bytes} bytes)]"
        data = a.path.read_bytes()
        if a.mime_type == "application/pdf" or a.mime_type.startswith("image/"):
            kind = "document" if a.mime_type == "application/pdf" else "image"
            encoded = base64.b64encode(data).decode("ascii")
            parts.append({"type": "text", "text": label})
            parts.append(
                {
                    "type": kind,
                    "source": {"type": "base64", "media_type": a.mime_type, "data": encoded},
                }
            )
        elif a.mime_type.startswith("text/"):
            text = data.decode("utf-8", "replace")[:MAX_INLINE_TEXT]
            parts.append({"type": "text", "text": f"{label}\n{text}"})
        else:
            parts.append({"type": "text", "text": f"{label} (not readable by the model)"})
    return parts


def _capped(value: dict[str, Any], limit: int) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: max(0, limit - 14)] + "...[truncated]"


def _payload_content(content: str | list[dict[str, Any]]) -> Any:
    """Message content for the payload log: file data replaced by its size."""
    if isinstance(content, str):
        return content
    out = []
    for part in content:
        source = part.get("source")
        if isinstance(source, dict) and "data" in source:
            size = f"<{len(source['data'])} base64 chars>"
            out.append({**part, "source": {**source, "data": size}})
        else:
            out.append(part)
    return out


def payload_row(
    usage: UsageRow,
    params: CompletionParams,
    purpose: str,
    *,
    text: str,
    calls: Sequence[ToolCallEnd],
    finish: Finish,
    limit: int,
) -> dict[str, Any]:
    """The request and response of one model call for the LLM usage logs: capped, and
    with nothing of the credentials (only the model-facing body is kept)."""
    request = {
        "model": params.model,
        "max_tokens": params.max_tokens,
        "messages": [
            {"role": m.role, "content": _payload_content(m.content)} for m in params.messages
        ],
        "tools": [t.name for t in params.tools],
    }
    response = {
        "model": params.model,
        "content": text,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls],
        "stop_reason": finish.finish_reason,
        "usage": {
            "input_tokens": finish.usage.input_tokens,
            "output_tokens": finish.usage.output_tokens,
        },
    }
    return {
        "id": usage["id"],
        "tenant_id": usage["tenant_id"],
        "project_id": usage["project_id"],
        "feature": "Agent Node",
        "description": purpose,
        "task_id": "",
        "request_json": _capped(request, limit),
        "response_json": _capped(response, limit),
        "created_at": usage["created_at"],
    }


class TurnHost:
    def __init__(
        self,
        *,
        chats: ChatService,
        limiter: RateLimiter,
        tools: HttpTools,
        tenant_id: str,
        project_id: str,
        session_id: str,
        listener: Listener | None = None,
        user_message: str = "",
        attachments: tuple[Attachment, ...] = (),
        payload_max_bytes: int | None = None,
    ) -> None:
        self._chats = chats
        self._limiter = limiter
        self._tools = tools
        self._tenant_id = tenant_id
        self._project_id = project_id
        self._session_id = session_id
        self._listener = listener
        self._user_message = user_message
        self._attachments = attachments
        self._parts: list[dict[str, Any]] | None = None
        self._payload_max = payload_max_bytes
        self.usage_rows: list[UsageRow] = []
        self.payload_rows: list[dict[str, Any]] = []  # llm_call_payloads, when kept

    async def _with_attachments(self, messages: tuple[Message, ...]) -> tuple[Message, ...]:
        """The turn's user message with its attachments as content parts."""
        if not self._attachments:
            return messages
        if self._parts is None:  # files read off the event loop, once per turn
            self._parts = await asyncio.to_thread(
                attachment_parts, self._user_message, self._attachments
            )
        out = list(messages)
        for i in range(len(out) - 1, -1, -1):
            if out[i].role == "user" and out[i].content == self._user_message:
                out[i] = Message("user", self._parts)
                break
        return tuple(out)

    async def call_model(self, request: ModelRequest) -> ModelResult:
        # Every model call counts against the tenant's rate limits, as a completion does.
        await admit(
            self._limiter,
            self._tenant_id,
            message="Rate limit exceeded",
            reason="RATE_LIMIT_EXCEEDED",
        )
        started = time.perf_counter()
        resolution, provider = await self._chats.resolve(self._tenant_id, self._project_id)
        messages = await self._with_attachments(tuple(_message(m) for m in request.messages))
        if request.system:
            messages = (Message("system", request.system), *messages)
        params = CompletionParams(
            model=resolution.model,
            messages=messages,
            tools=tuple(ToolSpec(t.name, t.description, t.parameters) for t in request.tools),
            max_tokens=MAX_MODEL_TOKENS,
        )
        meter = Meter(
            self._record_usage,
            self._chats.prices,
            started=started,
            tenant_id=self._tenant_id,
            project_id=self._project_id,
            session_id=self._session_id,
            model=resolution.model,
            provider=provider.name,
        )
        text: list[str] = []
        calls: list[ToolCallEnd] = []
        finish: Finish | None = None
        status = "error"
        failure: BaseException | None = None
        span = tracing.start_llm_span(provider.name, resolution.model)
        try:
            with tracing.use(span):  # the SDK's own spans (when on) nest under it
                async with contextlib.aclosing(provider.stream(params)) as events:
                    async for event in events:
                        if isinstance(event, TextDelta):
                            meter.first_output()
                            text.append(event.delta)
                            if self._listener is not None and request.purpose == "reasoning":
                                await self._listener(event)
                        elif isinstance(event, ToolCallEnd):
                            meter.first_output()
                            calls.append(event)
                        elif isinstance(event, UsageUpdate):
                            meter.progress(event.usage)
                        elif isinstance(event, Finish):
                            finish = event
            if finish is None:
                raise Unavailable("The model stream ended before it finished")
            cost = meter.finished(finish.finish_reason, finish.usage)
            status = "ok"
        except BaseException as exc:
            status = "error" if isinstance(exc, Exception) else "cancelled"
            failure = exc
            raise
        finally:
            meter.record(status)
            meter.end_span(
                span,
                finish_reason=finish.finish_reason if finish is not None else None,
                error=failure,
                status=status,
            )
        if self._payload_max is not None:
            self.payload_rows.append(
                payload_row(
                    self.usage_rows[-1],
                    params,
                    request.purpose,
                    text="".join(text),
                    calls=calls,
                    finish=finish,
                    limit=self._payload_max,
                )
            )
        return ModelResult(
            text="".join(text),
            tool_calls=tuple(ToolCallRequest(c.id, c.name, c.arguments) for c in calls),
            finish_reason=finish.finish_reason,
            model=resolution.model,
            provider=provider.name,
            input_tokens=finish.usage.input_tokens,
            output_tokens=finish.usage.output_tokens,
            estimated_cost=cost,
            latency_ms=meter.elapsed_ms(),
            ttft_ms=meter.ttft_ms,
        )

    def _record_usage(self, row: UsageRow) -> None:
        """Kept for the turn's transaction, and counted in the LLM metrics."""
        self.usage_rows.append(row)
        self._chats.observe_usage(row)

    async def call_tool(self, tool: ir.Tool, args: dict[str, Any], *, span_id: str) -> ToolResult:
        if tool.kind == "http" and tool.http is not None:
            result = await self._tools.call(tool, args)
            metrics.observe_tool(tool.name, result.ok, result.latency_ms / 1000)
            return result
        return ToolResult(
            ok=False,
            value=None,
            error=f"tool {tool.name} has no executable binding (type: {tool.kind or 'none'})",
            error_type="tool_error",
            latency_ms=0,
        )

    async def emit(self, item: StreamItem) -> None:
        if self._listener is not None:
            await self._listener(item)
