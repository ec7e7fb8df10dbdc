"""Provider-neutral types of the LLM layer: requests, stream events, results, the Provider protocol.

Messages use the OpenAI-like input shape of the public API (roles system/user/assistant/tool,
`tool_calls` on assistant messages, `tool_call_id` on tool messages); each provider converts
them to its own wire format.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from chatplane.errors import Unavailable


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text of the arguments object


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # "system" | "user" | "assistant" | "tool"
    content: str | list[dict[str, Any]]
    name: str = ""
    tool_call_id: str = ""  # set on role="tool": the ToolCall.id this message answers
    tool_calls: tuple[ToolCall, ...] = ()  # set on role="assistant"


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments object


@dataclass(frozen=True, slots=True)
class CompletionParams:
    model: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    temperature: float | None = None
    max_tokens: int = 4096


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens of one call. `input_tokens` counts uncached input only; cached input is
    reported apart (as Anthropic bills it)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


# --- stream events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    delta: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    id: str
    arguments: str  # a fragment of the arguments JSON text


@dataclass(frozen=True, slots=True)
class ToolCallEnd:
    id: str
    name: str
    arguments: str  # the complete arguments JSON text ("{}" when the tool takes none)


@dataclass(frozen=True, slots=True)
class UsageUpdate:
    """Tokens so far (a provider may send several; the last one counts)."""

    usage: TokenUsage


@dataclass(frozen=True, slots=True)
class Finish:
    """Last event of a successful stream."""

    finish_reason: str  # "end_turn", "max_tokens", "tool_use", "stop_sequence", ...
    usage: TokenUsage


ProviderEvent: TypeAlias = (
    TextDelta | ToolCallStart | ToolCallDelta | ToolCallEnd | UsageUpdate | Finish
)


@dataclass(frozen=True, slots=True)
class Completion:
    content: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    usage: TokenUsage


class Provider(Protocol):
    """A model backend.

    `stream()` is an async generator: events are yielded as the backend produces them and
    the last one is always `Finish` on success. Failures raise `chatplane.errors`
    exceptions. Closing the generator early (`aclose()`, or cancelling the consuming task)
    cancels the upstream request. It is typed AsyncGenerator rather than AsyncIterator so
    callers can close it promptly with `contextlib.aclosing()`.
    """

    name: str  # "anthropic" | "local"

    def stream(self, params: CompletionParams) -> AsyncGenerator[ProviderEvent, None]: ...

    async def complete(self, params: CompletionParams) -> Completion: ...

    async def aclose(self) -> None: ...


async def collect(events: AsyncIterator[ProviderEvent]) -> Completion:
    """Drain a provider stream into a Completion (text joined, tool calls from ToolCallEnd)."""
    text: list[str] = []
    calls: list[ToolCall] = []
    finish: Finish | None = None
    # Drain to the end (Finish is the last event) so the generator finishes and cleans up.
    async for event in events:
        if isinstance(event, TextDelta):
            text.append(event.delta)
        elif isinstance(event, ToolCallEnd):
            calls.append(ToolCall(event.id, event.name, event.arguments))
        elif isinstance(event, Finish):
            finish = event
    if finish is None:
        raise Unavailable("The model stream ended before it finished", reason="UPSTREAM_INCOMPLETE")
    return Completion(
        content="".join(text),
        tool_calls=tuple(calls),
        finish_reason=finish.finish_reason,
        usage=finish.usage,
    )
