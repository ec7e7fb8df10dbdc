"""The one validation of message shape, for every provider.

`validate_messages` checks what any provider relies on: roles, content, tool-call links,
content parts and tool-call arguments. Providers convert validated messages and do not
check them again. Errors read `Invalid request: ...` and name the offending field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chatplane.errors import InvalidArgument
from chatplane.llm.types import Message

ROLES = ("system", "user", "assistant", "tool")
# Content part types; image and document parts are in Anthropic's block shape.
PART_TYPES = ("text", "image", "document", "image_url")


@dataclass(frozen=True, slots=True)
class DataImage:
    """An image given inline as a base64 `data:` URL."""

    media_type: str
    data: str  # base64


@dataclass(frozen=True, slots=True)
class UrlImage:
    """An image given by an http(s) URL."""

    url: str


def parse_image_url(part: Mapping[str, Any]) -> DataImage | UrlImage:
    """The image of an OpenAI-style `image_url` part; ValueError says what is wrong."""
    raw = part.get("image_url")
    url = raw.get("url") if isinstance(raw, dict) else raw
    if not isinstance(url, str):
        raise ValueError("image_url.url is required")
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not media_type:
            raise ValueError("image_url.url: only base64 data: URLs are supported")
        return DataImage(media_type, data)
    if url.startswith(("https://", "http://")):
        return UrlImage(url)
    raise ValueError("image_url.url must be an https:// or a data: URL")


def tool_arguments(text: str) -> dict[str, Any]:
    """Tool-call arguments JSON text as an object ("" is {}); ValueError when not one."""
    try:
        arguments = json.loads(text or "{}")
    except ValueError:
        raise ValueError("must be a JSON object") from None
    if not isinstance(arguments, dict):
        raise ValueError("must be a JSON object")
    return arguments


def _bad(message: str, field: str) -> InvalidArgument:
    return InvalidArgument(f"Invalid request: {message}", field=field)


def validate_messages(messages: Sequence[Message]) -> None:
    """Raise InvalidArgument for the first message that no provider could take."""
    if not messages:
        raise _bad("messages must contain at least one message", "messages")
    for i, message in enumerate(messages):
        _validate_message(message, f"messages[{i}]")
    if all(m.role == "system" for m in messages):
        raise _bad("messages must include at least one non-system message", "messages")


def _validate_message(message: Message, where: str) -> None:
    if message.role not in ROLES:
        raise _bad(f"{where}.role must be one of {', '.join(ROLES)}", f"{where}.role")
    if message.content == "" and not message.tool_calls:
        raise _bad(f"{where}.content is required", f"{where}.content")
    if message.role == "tool" and not message.tool_call_id:
        raise _bad(f"{where}.tool_call_id is required for role tool", f"{where}.tool_call_id")
    if message.tool_calls and message.role != "assistant":
        raise _bad(f"{where}.tool_calls is only allowed for role assistant", f"{where}.tool_calls")
    for j, call in enumerate(message.tool_calls):
        field = f"{where}.tool_calls[{j}].arguments"
        try:
            tool_arguments(call.arguments)
        except ValueError as exc:
            raise _bad(f"{field} {exc}", field) from None
    if isinstance(message.content, list):
        for j, part in enumerate(message.content):
            _validate_part(part, f"{where}.content[{j}]")


def _validate_part(part: object, field: str) -> None:
    """One content part; errors name the part (`messages[i].content[j]`) as the field."""
    kind = part.get("type") if isinstance(part, dict) else None
    if not isinstance(part, dict) or kind not in PART_TYPES:
        raise _bad(f"{field}.type must be one of {', '.join(PART_TYPES)}, got {kind!r}", field)
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise _bad(f"{field}.text must be a string", field)
    elif kind == "image_url":
        try:
            parse_image_url(part)
        except ValueError as exc:
            raise _bad(f"{field}.{exc}", field) from None
    elif not isinstance(part.get("source"), dict):  # image, document
        raise _bad(f"{field}.source must be an object", field)
