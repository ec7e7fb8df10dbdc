"""Anthropic Messages responses -> provider-neutral results.

Bodies are read as plain dicts (not the SDK's pydantic models): a JSON body becomes a
`Completion`, and the frames of an SSE stream become `ProviderEvent`s one at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2

from chatplane.llm.anthropic.errors import BadResponse
from chatplane.llm.types import (
    Completion,
    Finish,
    ProviderEvent,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
)


def usage_from(usage: dict[str, Any]) -> TokenUsage:
    """TokenUsage of a Messages `usage` object (cache counts may be absent or null)."""
    return TokenUsage(
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        cache_read_tokens=usage.get("cache_read_input_tokens") or 0,
        cache_write_tokens=usage.get("cache_creation_input_tokens") or 0,
    )


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
        return Completion(
            content="".join(text),
            tool_calls=tuple(calls),
            finish_reason=body.get("stop_reason") or "end_turn",
            usage=usage_from(body["usage"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise BadResponse("unexpected Messages response body") from exc


# The streaming response, or how to get it: only error frames need it, and the lean
# transport builds its httpx2 form only then.
ResponseSource = httpx2.Response | Callable[[], httpx2.Response]


def _resolve(response: ResponseSource) -> httpx2.Response:
    return response if isinstance(response, httpx2.Response) else response()


def stream_error(data: bytes, source: ResponseSource) -> anthropic.APIStatusError:
    """An in-stream `event: error` as the SDK raises it: APIStatusError with status 200."""
    response = _resolve(source)
    body: object
    try:
        body = json.loads(data)
        message = f"{body}"
    except ValueError:
        body = data.decode("utf-8", "replace")
        message = body or f"Error code: {response.status_code}"
    return anthropic.APIStatusError(message, response=response, body=body)


@dataclass(slots=True)
class StreamMapper:
    """Turns SSE frames of a Messages stream into ProviderEvents, one frame at a time."""

    usage: TokenUsage = field(default_factory=TokenUsage)
    stop_reason: str | None = None
    finished: bool = False
    # content block index -> (tool_use id, name, argument fragments)
    tools: dict[int, tuple[str, str, list[str]]] = field(default_factory=dict)

    def feed(self, event: bytes, data: bytes, response: ResponseSource) -> ProviderEvent | None:
        """The event for one frame, if any; raises APIStatusError for an error frame."""
        if event == b"error":
            raise stream_error(data, response)
        if not data:
            return None
        try:
            return self._map(json.loads(data), response)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadResponse(f"unexpected stream event: {data[:200]!r}") from exc

    def _map(self, payload: dict[str, Any], response: ResponseSource) -> ProviderEvent | None:
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
            # Known input from the start: a stream cut short still accounts for it.
            self.usage = usage_from(payload["message"]["usage"])
            return UsageUpdate(self.usage)
        if kind == "message_delta":
            self.usage = self._cumulative(payload["usage"])
            if (stop_reason := payload["delta"].get("stop_reason")) is not None:
                self.stop_reason = stop_reason
            return UsageUpdate(self.usage)
        if kind == "message_stop":
            self.finished = True
            return Finish(finish_reason=self.stop_reason or "end_turn", usage=self.usage)
        if kind == "error":  # an error frame under another event name
            raise anthropic.APIStatusError(f"{payload}", response=_resolve(response), body=payload)
        return None  # ping, and event types newer than this module

    def _cumulative(self, usage: dict[str, Any]) -> TokenUsage:
        """message_delta usage is cumulative; input counts appear there only sometimes."""
        now = self.usage

        def pick(key: str, previous: int) -> int:
            value: int | None = usage.get(key)
            return previous if value is None else value

        return TokenUsage(
            input_tokens=pick("input_tokens", now.input_tokens),
            output_tokens=usage["output_tokens"],
            cache_read_tokens=pick("cache_read_input_tokens", now.cache_read_tokens),
            cache_write_tokens=pick("cache_creation_input_tokens", now.cache_write_tokens),
        )
