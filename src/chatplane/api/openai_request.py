"""OpenAI's Chat Completions wire format, the request side (no gRPC here).

`parse_request` turns OpenAI's JSON body into a `ChatRequest` plus the options only this
wire has (`stream`, `stream_options.include_usage`, `stop`); errors name OpenAI's
parameters (`retarget`, `openai_param`).

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
from dataclasses import dataclass
from typing import Any

from chatplane.chat.types import ChatRequest
from chatplane.errors import ChatplaneError, InvalidArgument
from chatplane.llm.models import TIERS
from chatplane.llm.types import Message, ToolCall, ToolSpec

PROJECT_HEADERS = ("x-chatplane-project", "openai-project")
MAX_STOP_SEQUENCES = 4
_PROJECT_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

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
