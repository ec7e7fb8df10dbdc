"""Chat completion domain types: the request, the stream's events and the result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

from chatplane.llm.types import (
    Message,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    UsageUpdate,
)


class ModelSource(StrEnum):
    """Where the resolved model came from (a closed set; the wire shows the value)."""

    REQUEST = "request"
    TIER = "tier"
    PROJECT = "project"
    TENANT = "tenant"
    SERVER = "server"  # the server's default (or the local model without credentials)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A completion request, already converted from the wire."""

    project_id: str
    messages: tuple[Message, ...]
    session_id: str = ""
    tools: tuple[ToolSpec, ...] = ()
    model_id: str = ""
    tier: str = ""
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    model_id: str
    provider: str
    source: ModelSource


@dataclass(frozen=True, slots=True)
class StreamFailed:
    error: str
    retryable: bool = False  # the same request may succeed later (e.g. server shutting down)


@dataclass(frozen=True, slots=True)
class StreamCompleted:
    usage: TokenUsage
    estimated_cost: float | None
    latency_ms: int
    finish_reason: str = ""  # the provider's (`end_turn`, `max_tokens`, `tool_use`, ...)


ChatEvent: TypeAlias = (
    StreamMetadata
    | TextDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | UsageUpdate
    | StreamFailed
    | StreamCompleted
)


@dataclass(frozen=True, slots=True)
class ChatResult:
    content: str
    tool_calls: tuple[ToolCall, ...]
    model: str
    finish_reason: str
    usage: TokenUsage
    estimated_cost: float | None
    latency_ms: int


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """A project's and its tenant's model settings, as resolution needs them."""

    tier_models: dict[str, str]
    project_model: str
    tenant_model: str
    anthropic_key: str | None
