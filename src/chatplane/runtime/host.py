"""What the runtime needs from the outside world: a model, tools, a stream."""

from __future__ import annotations

from typing import Any, Protocol

from chatplane.lang import ir
from chatplane.runtime.types import ModelRequest, ModelResult, StreamItem, ToolResult


class Host(Protocol):
    async def call_model(self, request: ModelRequest) -> ModelResult:
        """One model call. Raises chatplane.errors.* when the model cannot be reached."""
        ...

    async def call_tool(self, tool: ir.Tool, args: dict[str, Any], *, span_id: str) -> ToolResult:
        """Perform a real tool call (HTTP...). Never called for a mocked tool."""
        ...

    async def emit(self, item: StreamItem) -> None:
        """Streaming: text deltas and trace events as they happen (may do nothing)."""
        ...
