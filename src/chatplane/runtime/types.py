"""The runtime's public value types: turn input, model and tool results, trace events, outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatplane.runtime.state import SessionState

Json = Any


@dataclass(frozen=True, slots=True)
class ToolMock:
    """`testContext.toolMocks[]`: `response` is what the tool returns; `error` makes it fail.

    Several mocks for one tool are used in order, one per call; the last one repeats.
    """

    tool_name: str
    response: Json = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TestContext:
    __test__ = False  # not a pytest class

    gather_values: dict[str, Json] = field(default_factory=dict)
    session_variables: dict[str, Json] = field(default_factory=dict)
    caller_context: dict[str, Json] = field(default_factory=dict)
    tool_mocks: tuple[ToolMock, ...] = ()
    skip_on_start: bool = False
    start_at_step: str | None = None


@dataclass(frozen=True, slots=True)
class TurnInput:
    message: str
    metadata: dict[str, Json] = field(default_factory=dict)
    test: TestContext | None = None


@dataclass(frozen=True, slots=True)
class ToolSchema:
    name: str
    description: str
    parameters: dict[str, Json]  # JSON Schema of the arguments object


@dataclass(frozen=True, slots=True)
class ModelRequest:
    system: str
    messages: tuple[dict[str, Json], ...]
    tools: tuple[ToolSchema, ...]
    purpose: str  # "reasoning" | "gather_extract"
    span_id: str


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """One tool call the model asked for; `arguments` is JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ModelResult:
    text: str
    tool_calls: tuple[ToolCallRequest, ...] = ()
    finish_reason: str = "end_turn"
    model: str = ""
    provider: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    estimated_cost: float | None = None
    latency_ms: int = 0
    ttft_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ToolResult:
    ok: bool
    value: Json = None
    error: str | None = None
    error_type: str | None = None  # "tool_error" | "timeout" | "invalid_arguments" | ...
    latency_ms: int = 0


@dataclass(frozen=True, slots=True)
class TraceEvent:
    type: str
    span_id: str
    parent_span_id: str | None
    started_ms: int  # offset from the start of the turn
    duration_ms: int
    data: dict[str, Json]
    decision_kind: str | None = None

    def to_json(self) -> dict[str, Json]:
        out: dict[str, Json] = {
            "type": self.type,
            "spanId": self.span_id,
            "parentSpanId": self.parent_span_id,
            "startedMs": self.started_ms,
            "durationMs": self.duration_ms,
            "data": self.data,
        }
        if self.decision_kind is not None:
            out["decisionKind"] = self.decision_kind
        return out


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the reply, streamed as soon as the runtime produces it."""

    text: str


StreamItem = TextDelta | TraceEvent


@dataclass(frozen=True, slots=True)
class TurnAction:
    type: str  # "continue" | "complete" | "escalate" | "handoff"
    data: dict[str, Json] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    reply: str
    action: TurnAction
    state: SessionState
    events: tuple[TraceEvent, ...]
    rich_content: tuple[dict[str, Json], ...] = ()
    actions: tuple[dict[str, Json], ...] = ()
    error_count: int = 0
    span_id: str = ""  # the turn's root span: parent of its top-level events
