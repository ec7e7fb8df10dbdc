"""OpenAI's Chat Completions wire format <-> the chat domain (no gRPC here).

`parse_request` turns OpenAI's JSON body into a `ChatRequest` plus the options only this
wire has (`stream`, `stream_options.include_usage`, `stop`); `completion_body` writes
the `chat.completion` object; `ChunkEncoder` writes `chat.completion.chunk` SSE frames
from the service's stream events, then the usage chunk and `data: [DONE]`.

Choices made where OpenAI's API and chatplane's differ (docs/behaviour.md#openai-
compatible-chat-completions):
- `model` is a Claude id, `chatplane-local-echo` or a tier name (`fast`, `balanced`,
  `powerful`: the project's model for that tier, else the server's).
- `developer` messages are system messages; a tool without `description` is described
  by its name; a tool without `parameters` takes an empty object.
- `stop` is applied by chatplane to the text (the provider is not told: it may generate,
  and bill, tokens after the stop sequence, which are not returned).
- `temperature` is validated (0-2) like on the native route; `n` must be 1;
  `tool_choice` `none` drops the tools, other values are accepted and not forwarded;
  other OpenAI parameters (`top_p`, `seed`, `user`, `response_format`, ...) are ignored.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from chatplane.chat.types import (
    ChatEvent,
    ChatRequest,
    ChatResult,
    StreamCompleted,
    StreamFailed,
    StreamMetadata,
)
from chatplane.errors import ChatplaneError, InvalidArgument
from chatplane.llm.models import TIERS
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

PROJECT_HEADERS = ("x-chatplane-project", "openai-project")
MAX_STOP_SEQUENCES = 4
_PROJECT_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

# chatplane's finish reasons -> OpenAI's.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Field names the chat service reports -> OpenAI's parameter names.
_PARAMS = {
    "maxTokens": "max_tokens",
    "modelId": "model",
    "tier": "model",
    "projectId": "X-Chatplane-Project",
}
_TOOL_FIELD = re.compile(r"^tools\[(\d+)\]\.(name|description|parameters)$")


def openai_param(field_name: str) -> str:
    """The OpenAI request parameter behind a chat-service field name."""
    if field_name in _PARAMS:
        return _PARAMS[field_name]
    match = _TOOL_FIELD.match(field_name)
    if match:
        return f"tools[{match.group(1)}].function.{match.group(2)}"
    return field_name


def retarget(exc: ChatplaneError) -> ChatplaneError:
    """The same error, its field named as OpenAI's parameter (for `error.param`)."""
    current = exc.metadata.get("field")
    if current:
        exc.metadata["field"] = openai_param(current)
        exc.field = exc.metadata["field"]
    return exc


def _bad(message: str, param: str) -> InvalidArgument:
    return InvalidArgument(f"Invalid request: {message}", field=param)


@dataclass(frozen=True, slots=True)
class OpenAiOptions:
    """What the OpenAI request asks for beyond the completion itself."""

    model: str
    stream: bool = False
    include_usage: bool = False
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None


def project_from_headers(headers: dict[str, str]) -> str:
    for name in PROJECT_HEADERS:
        value = headers.get(name, "").strip()
        if value:
            if not _PROJECT_ID.fullmatch(value):
                raise _bad(
                    "X-Chatplane-Project must be a project id (1-128 characters of "
                    "[A-Za-z0-9._:-])",
                    "X-Chatplane-Project",
                )
            return value
    raise _bad(
        "the project is required: send the X-Chatplane-Project header (or the SDK's "
        "`project` option, sent as OpenAI-Project)",
        "X-Chatplane-Project",
    )


def _object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"{param} must be an object", param)
    return value


def _content(value: Any, param: str) -> str | list[dict[str, Any]]:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        return [dict(p) for p in value]
    raise _bad(f"{param} must be a string or an array of content parts", param)


def _tool_calls(value: Any, param: str) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad(f"{param} must be an array", param)
    calls = []
    for i, raw in enumerate(value):
        item = _object(raw, f"{param}[{i}]")
        function = _object(item.get("function"), f"{param}[{i}].function")
        arguments = function.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        calls.append(
            ToolCall(str(item.get("id") or ""), str(function.get("name") or ""), arguments)
        )
    return tuple(calls)


def _messages(value: Any) -> tuple[Message, ...]:
    if not isinstance(value, list) or not value:
        raise _bad("messages must be a non-empty array", "messages")
    out = []
    for i, raw in enumerate(value):
        param = f"messages[{i}]"
        item = _object(raw, param)
        role = item.get("role")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant", "tool"):
            raise _bad(
                f"{param}.role must be one of system, developer, user, assistant, tool",
                f"{param}.role",
            )
        name = item.get("name")
        out.append(
            Message(
                role=role,
                content=_content(item.get("content"), f"{param}.content"),
                name=name if isinstance(name, str) else "",
                tool_call_id=str(item.get("tool_call_id") or ""),
                tool_calls=_tool_calls(item.get("tool_calls"), f"{param}.tool_calls"),
            )
        )
    return tuple(out)


def _tools(value: Any, tool_choice: Any) -> tuple[ToolSpec, ...]:
    if value is None or tool_choice == "none":
        return ()
    if not isinstance(value, list):
        raise _bad("tools must be an array", "tools")
    out = []
    for i, raw in enumerate(value):
        item = _object(raw, f"tools[{i}]")
        if item.get("type", "function") != "function":
            raise _bad(f"tools[{i}].type must be function", f"tools[{i}].type")
        function = _object(item.get("function"), f"tools[{i}].function")
        name = function.get("name")
        if not isinstance(name, str):
            raise _bad(f"tools[{i}].function.name is required", f"tools[{i}].function.name")
        description = function.get("description") or name
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        out.append(
            ToolSpec(
                name,
                str(description),
                _object(parameters, f"tools[{i}].function.parameters"),
            )
        )
    return tuple(out)


def _int(value: Any, param: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{param} must be an integer", param)
    return value


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _bad("stop must be a string or an array of strings", "stop")
    if len(stops) > MAX_STOP_SEQUENCES:
        raise _bad(f"stop may hold at most {MAX_STOP_SEQUENCES} sequences", "stop")
    return tuple(s for s in stops if s)


def parse_request(body: bytes, project_id: str) -> tuple[ChatRequest, OpenAiOptions]:
    """OpenAI's request JSON -> the completion request and the wire options."""
    try:
        raw = json.loads(body or b"null")
    except (ValueError, RecursionError):
        raise _bad("the body is not valid JSON", "body") from None
    data = _object(raw, "body")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model is required", "model")
    n = data.get("n")
    if n not in (None, 1):
        raise _bad("n must be 1 (one choice per request)", "n")
    temperature = data.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, int | float)
    ):
        raise _bad("temperature must be a number", "temperature")
    max_tokens = _int(data.get("max_completion_tokens"), "max_completion_tokens")
    if max_tokens is None:
        max_tokens = _int(data.get("max_tokens"), "max_tokens")
    stream = data.get("stream") is True
    options = data.get("stream_options") or {}
    include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    tier = model if model in TIERS else ""
    request = ChatRequest(
        project_id=project_id,
        messages=_messages(data.get("messages")),
        tools=_tools(data.get("tools"), data.get("tool_choice")),
        model_id="" if tier else model,
        tier=tier,
        temperature=float(temperature) if temperature is not None else None,
        max_tokens=max_tokens,
    )
    return request, OpenAiOptions(
        model=model,
        stream=stream,
        include_usage=include_usage,
        stop=_stop(data.get("stop")),
        max_tokens=max_tokens,
    )


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


def _dumps(value: Any) -> bytes:
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
    return _dumps(
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
    return b"data: " + _dumps(body) + b"\n\n"


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
        return b"data: " + _dumps(body) + b"\n\n"

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
            case StreamCompleted(usage, _, _):
                return self._finish(usage)
            case StreamFailed(error, _):
                return error_frame(error)

    def _finish(self, usage: TokenUsage) -> bytes:
        out = self._text(self._cutter.flush())
        if self._cutter.stopped:
            finish = "stop"
        elif self._tools:
            finish = "tool_calls"
        elif self.options.max_tokens is not None and usage.output_tokens >= self.options.max_tokens:
            finish = "length"  # the budget was spent (the stream's events carry no reason)
        else:
            finish = "stop"
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
            out += b"data: " + _dumps(body) + b"\n\n"
        return out + DONE


def model_object(model_id: str, owned_by: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


def models_body(models: list[dict[str, Any]]) -> bytes:
    return _dumps({"object": "list", "data": models})
