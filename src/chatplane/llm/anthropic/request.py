"""CompletionParams -> the Anthropic Messages API request body.

Messages arrive validated (`chatplane.llm.messages.validate_messages`); this module only
converts them. The one check left here is Anthropic's own: once blank text is dropped
(the API rejects empty text blocks) at least one user or assistant turn must remain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chatplane.errors import InvalidArgument
from chatplane.llm.messages import DataImage, parse_image_url, tool_arguments
from chatplane.llm.types import CompletionParams, Message, ToolCall, ToolSpec

# Content parts already in Anthropic's shape, passed through untouched.
_PASSTHROUGH_PARTS = frozenset({"image", "document"})


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
    # params.temperature is deliberately dropped: API version 2026-10-21 rejects sampling
    # parameters (temperature, top_p, top_k) with 400 even at their defaults.
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
    """Validated OpenAI-like messages -> (system text, Anthropic messages).

    System messages become the `system` parameter; tool messages become user turns with a
    `tool_result` block; assistant tool calls become `tool_use` blocks; consecutive turns of
    the same role are merged (the API wants user and assistant to alternate).
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            text = "\n".join(b["text"] for b in content_blocks(m.content) if b["type"] == "text")
            if text:
                system.append(text)
            continue
        if m.role == "tool":
            role = "user"
            result = m.content if isinstance(m.content, str) else content_blocks(m.content)
            blocks = [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": result}]
        else:
            assert m.role in ("user", "assistant"), f"unvalidated role {m.role!r}"
            role = m.role
            blocks = content_blocks(m.content) + [tool_use_block(c) for c in m.tool_calls]
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidArgument(
            "Invalid request: messages needs at least one user or assistant message"
            " with non-blank content",
            field="messages",
        )
    for turn in turns:
        if turn["role"] == "user":
            # tool_result blocks must open the user turn that answers the tool calls.
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return ("\n\n".join(system) or None), turns


def content_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Message content as Anthropic content blocks; blank text is dropped."""
    if isinstance(content, str):
        # The API rejects empty or whitespace-only text blocks.
        return [{"type": "text", "text": content}] if content.strip() else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part["type"]
        if kind == "text":
            text: str = part["text"]
            if text.strip():
                block: dict[str, Any] = {"type": "text", "text": text}
                if "cache_control" in part:
                    block["cache_control"] = part["cache_control"]
                blocks.append(block)
        elif kind in _PASSTHROUGH_PARTS:
            blocks.append(dict(part))
        else:
            assert kind == "image_url", f"unvalidated content part {kind!r}"
            blocks.append(image_block(part))
    return blocks


def image_block(part: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-style image_url part as an Anthropic image block (data: URL or http(s))."""
    image = parse_image_url(part)
    if isinstance(image, DataImage):
        source = {"type": "base64", "media_type": image.media_type, "data": image.data}
        return {"type": "image", "source": source}
    return {"type": "image", "source": {"type": "url", "url": image.url}}


def tool_use_block(call: ToolCall) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": call.id,
        "name": call.name,
        "input": tool_arguments(call.arguments),
    }
