"""Built-in offline provider: a deterministic echo model for development, tests and demos.

It never calls a network service and never claims to be Claude: its model id is
`chatplane-local-echo`.

Tokenizer rule (used for every count here): a token is one match of the regex
`\\w+|[^\\w\\s]`, i.e. a run of word characters or a single punctuation character.
Input tokens count the text of every message (system included, tool calls' names and
arguments included) plus each tool spec serialized as JSON with sorted keys. Output
tokens count the streamed text plus each emitted tool call's name and arguments.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncGenerator
from typing import Any

from chatplane.errors import InvalidArgument
from chatplane.llm.models import LOCAL_MODEL
from chatplane.llm.types import (
    Completion,
    CompletionParams,
    Finish,
    Message,
    ProviderEvent,
    TextDelta,
    TokenUsage,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    UsageUpdate,
    collect,
)

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
# The same tokens, each with the whitespace before it, so the pieces join back to the text.
_PIECE_RE = re.compile(r"\s*(?:\w+|[^\w\s])")

REPLY_SUFFIX = "(This reply comes from the built-in local echo model, not from an LLM.)"


def count_tokens(text: str) -> int:
    return len(TOKEN_RE.findall(text))


def message_text(content: str | list[dict[str, Any]]) -> str:
    """The text of a message: the string itself, or its text parts joined by newlines."""
    if isinstance(content, str):
        return content
    parts = [p.get("text") for p in content if p.get("type") == "text"]
    return "\n".join(p for p in parts if isinstance(p, str))


def count_input_tokens(messages: tuple[Message, ...], tools: tuple[ToolSpec, ...]) -> int:
    total = 0
    for m in messages:
        total += count_tokens(message_text(m.content))
        for call in m.tool_calls:
            total += count_tokens(call.name) + count_tokens(call.arguments)
    for tool in tools:
        spec = {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
        total += count_tokens(json.dumps(spec, sort_keys=True))
    return total


class LocalProvider:
    name: str = "local"

    def __init__(self, *, token_delay: float = 0.0) -> None:
        # Seconds to wait before each streamed token, to imitate a real model's pace.
        self.token_delay = token_delay

    async def stream(self, params: CompletionParams) -> AsyncGenerator[ProviderEvent, None]:
        if params.model != LOCAL_MODEL:
            raise InvalidArgument(
                f"Model {params.model!r} is not served by the local provider", field="modelId"
            )
        if params.max_tokens < 1:
            raise InvalidArgument("maxTokens must be at least 1", field="maxTokens")
        input_tokens = count_input_tokens(params.messages, params.tools)
        text, tool = _plan_reply(params)

        budget = params.max_tokens
        output_tokens = 0
        finish_reason = "end_turn"
        for piece in _PIECE_RE.findall(text):
            if output_tokens >= budget:
                finish_reason = "max_tokens"
                break
            await self._pace()
            output_tokens += 1
            yield TextDelta(piece)

        if tool is not None and finish_reason != "max_tokens":
            cost = count_tokens(tool.name) + count_tokens("{}")
            if output_tokens + cost > budget:
                finish_reason = "max_tokens"
            else:
                call_id = (
                    "call_local_"
                    + hashlib.sha256(f"{tool.name}\x00{text}".encode()).hexdigest()[:16]
                )
                await self._pace()
                yield ToolCallStart(call_id, tool.name)
                yield ToolCallDelta(call_id, "{}")
                yield ToolCallEnd(call_id, tool.name, "{}")
                output_tokens += cost
                finish_reason = "tool_use"

        usage = TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens)
        yield UsageUpdate(usage)
        yield Finish(finish_reason, usage)

    async def complete(self, params: CompletionParams) -> Completion:
        return await collect(self.stream(params))

    async def aclose(self) -> None:
        return None

    async def _pace(self) -> None:
        if self.token_delay > 0:
            await asyncio.sleep(self.token_delay)


def _plan_reply(params: CompletionParams) -> tuple[str, ToolSpec | None]:
    """The reply text, and the tool to call if any, derived from the conversation only."""
    last = next((m for m in reversed(params.messages) if m.role != "system"), None)
    if last is not None and last.role == "tool":
        # Answer a tool result instead of calling the tool again (no endless tool loops).
        result = message_text(last.content)
        return f"The tool returned: {result} {REPLY_SUFFIX}", None
    user = next((m for m in reversed(params.messages) if m.role == "user"), None)
    said = message_text(user.content).strip() if user is not None else ""
    if user is not None and last is user:
        lowered = said.lower()
        for tool in params.tools:
            if re.search(rf"(?<!\w){re.escape(tool.name.lower())}(?!\w)", lowered):
                return f"Calling the tool {tool.name}.", tool
    if not said:
        return f"You said nothing. {REPLY_SUFFIX}", None
    return f"You said: {said} {REPLY_SUFFIX}", None
