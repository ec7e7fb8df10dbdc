"""OpenAI's Chat Completions wire format, the response side (no gRPC here).

`completion_body` writes the `chat.completion` object; `ChunkEncoder` writes
`chat.completion.chunk` SSE frames from the service's stream events, then the usage chunk
and `data: [DONE]`; `StopCutter` applies `stop` to the text. The request side is
`openai_request.py`.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from chatplane.api.openai_request import OpenAiOptions
from chatplane.chat.types import (
    ChatEvent,
    ChatResult,
    StreamCompleted,
    StreamFailed,
    StreamMetadata,
)
from chatplane.llm.types import (
    TextDelta,
    TokenUsage,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
)

# chatplane's finish reasons -> OpenAI's.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def _usage(usage: TokenUsage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens
        + usage.cache_read_tokens
        + usage.cache_write_tokens
        + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
    }


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class StopCutter:
    """Cuts streamed text at the first stop sequence; text that might begin one is held
    back until it is known not to."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = stops
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        if not self._stops:
            return text
        buffer = self._held + text
        hits = [i for i in (buffer.find(s) for s in self._stops) if i >= 0]
        if hits:
            self.stopped = True
            self._held = ""
            return buffer[: min(hits)]
        keep = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), keep, -1):
                if buffer.endswith(stop[:size]):
                    keep = size
                    break
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        out, self._held = self._held, ""
        return "" if self.stopped else out


def completion_body(result: ChatResult, options: OpenAiOptions, *, id_: str, created: int) -> bytes:
    """The `chat.completion` object of a whole answer."""
    cutter = StopCutter(options.stop)
    content = cutter.feed(result.content) + cutter.flush()
    finish = "stop" if cutter.stopped else FINISH_REASONS.get(result.finish_reason, "stop")
    message: dict[str, Any] = {"role": "assistant", "content": content or None, "refusal": None}
    if result.tool_calls and not cutter.stopped:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in result.tool_calls
        ]
    elif content == "":
        message["content"] = ""
    return dumps(
        {
            "id": id_,
            "object": "chat.completion",
            "created": created,
            "model": result.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": _usage(result.usage),
            "system_fingerprint": None,
        }
    )


def error_frame(message: str, *, code: str = "stream_error", type_: str = "server_error") -> bytes:
    """An in-band error after the stream started (the SDKs raise it as an APIError)."""
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return b"data: " + dumps(body) + b"\n\n"


DONE = b"data: [DONE]\n\n"


@dataclass
class ChunkEncoder:
    """The SSE frames of one streamed completion, event by event."""

    options: OpenAiOptions
    id: str = field(default_factory=completion_id)
    created: int = field(default_factory=lambda: int(time.time()))
    model: str = ""
    _cutter: StopCutter = field(init=False)
    _tools: dict[str, int] = field(default_factory=dict)
    _finished: bool = False

    def __post_init__(self) -> None:
        self.model = self.model or self.options.model
        self._cutter = StopCutter(self.options.stop)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.options.include_usage:
            body["usage"] = usage
        return b"data: " + dumps(body) + b"\n\n"

    def _text(self, text: str) -> bytes:
        return self._chunk({"content": text}) if text else b""

    def frame(self, event: ChatEvent) -> bytes:
        """The bytes for one service event (possibly none)."""
        match event:
            case StreamMetadata(model_id, _, _):
                self.model = model_id
                return self._chunk({"role": "assistant", "content": "", "refusal": None})
            case TextDelta(delta):
                return self._text(self._cutter.feed(delta))
            case ToolCallStart(call_id, name):
                if self._cutter.stopped:
                    return b""
                index = self._tools.setdefault(call_id, len(self._tools))
                call = {
                    "index": index,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
                return self._text(self._cutter.flush()) + self._chunk({"tool_calls": [call]})
            case ToolCallDelta(call_id, arguments):
                if self._cutter.stopped or call_id not in self._tools or not arguments:
                    return b""
                call = {"index": self._tools[call_id], "function": {"arguments": arguments}}
                return self._chunk({"tool_calls": [call]})
            case ToolCallEnd() | UsageUpdate():
                return b""
            case StreamCompleted(usage, _, _, reason):
                return self._finish(usage, reason)
            case StreamFailed(error, _):
                return error_frame(error)

    def _finish(self, usage: TokenUsage, reason: str) -> bytes:
        out = self._text(self._cutter.flush())
        if self._cutter.stopped:
            finish = "stop"
        elif self._tools:
            finish = "tool_calls"
        else:  # as completion_body maps it
            finish = FINISH_REASONS.get(reason, "stop")
        out += self._chunk({}, finish)
        if self.options.include_usage:
            body = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": None,
                "choices": [],
                "usage": _usage(usage),
            }
            out += b"data: " + dumps(body) + b"\n\n"
        return out + DONE


def model_object(model_id: str, owned_by: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


def models_body(models: list[dict[str, Any]]) -> bytes:
    return dumps({"object": "list", "data": models})
