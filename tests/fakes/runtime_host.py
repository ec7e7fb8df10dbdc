"""A scripted runtime Host: queued model results, tool answers per tool, recorded calls."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any

from chatplane.lang import ir
from chatplane.runtime import (
    ModelRequest,
    ModelResult,
    StreamItem,
    ToolCallRequest,
    ToolResult,
)


def text(t: str, **kw: Any) -> ModelResult:
    return ModelResult(t, (), "end_turn", "scripted", "fake", 10, 5, 0.0, 3, 1, **kw)


def tool_call(name: str, args: dict[str, Any], call_id: str = "tc1") -> ModelResult:
    call = ToolCallRequest(call_id, name, json.dumps(args))
    return ModelResult("", (call,), "tool_use", "scripted", "fake", 10, 5, 0.0, 3, 1)


class ScriptedHost:
    """`models`: results (or exceptions) in order; when empty, echoes the last user message.
    `tools`: tool name -> value, ToolResult, exception or a function of the args."""

    def __init__(
        self,
        models: list[ModelResult | BaseException] | None = None,
        tools: dict[str, Any] | None = None,
    ) -> None:
        self.models: deque[ModelResult | BaseException] = deque(models or [])
        self.tools = dict(tools or {})
        self.model_requests: list[ModelRequest] = []
        self.tool_calls: list[tuple[str, dict[str, Any]]] = []
        self.stream: list[StreamItem] = []

    async def call_model(self, request: ModelRequest) -> ModelResult:
        self.model_requests.append(request)
        if self.models:
            nxt = self.models.popleft()
            if isinstance(nxt, BaseException):
                raise nxt
            return nxt
        last = next(
            (m["content"] for m in reversed(request.messages) if m.get("role") == "user"), ""
        )
        return text(str(last))  # the local model echoes

    async def call_tool(self, tool: ir.Tool, args: dict[str, Any], *, span_id: str) -> ToolResult:
        self.tool_calls.append((tool.name, args))
        spec = self.tools.get(tool.name)
        if isinstance(spec, BaseException):
            raise spec
        if isinstance(spec, ToolResult):
            return spec
        if callable(spec):
            fn: Callable[[dict[str, Any]], Any] = spec
            return ToolResult(True, fn(args), None, None, 2)
        if tool.name not in self.tools:
            return ToolResult(False, None, "connection refused", "tool_error", 1)
        return ToolResult(True, spec, None, None, 2)

    async def emit(self, item: StreamItem) -> None:
        self.stream.append(item)
