"""validate_messages: the one check of message shape, with the service's wording."""

from __future__ import annotations

from typing import Any

import pytest

from chatplane.errors import InvalidArgument
from chatplane.llm.messages import DataImage, UrlImage, parse_image_url, validate_messages
from chatplane.llm.types import Message, ToolCall

IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}
DOCUMENT = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}


def test_a_full_conversation_is_valid() -> None:
    validate_messages(
        [
            Message("system", "You are terse."),
            Message(
                "user",
                [
                    {"type": "text", "text": "What is in these?"},
                    IMAGE,
                    DOCUMENT,
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                    {"type": "image_url", "image_url": "https://example.com/a.png"},
                ],
            ),
            Message("assistant", "", tool_calls=(ToolCall("t1", "f", '{"a": 1}'),)),
            Message("assistant", "", tool_calls=(ToolCall("t2", "f", ""),)),  # "" is {}
            Message("tool", [{"type": "text", "text": "42"}], tool_call_id="t1"),
            Message("tool", "43", tool_call_id="t2"),
        ]
    )


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([Message("robot", "hi")], "messages[0].role"),
        ([Message("system", "only a system prompt")], "messages"),
        ([Message("tool", "42")], "messages[0].tool_call_id"),
        (
            [Message("assistant", "", tool_calls=(ToolCall("t1", "f", "{not json"),))],
            "messages[0].tool_calls[0].arguments",
        ),
        ([Message("user", [{"type": "audio", "data": "x"}])], "messages[0].content[0]"),
    ],
)
def test_validate_messages_rejects_bad_input(messages: list[Message], field: str) -> None:
    """Moved from the Anthropic converter's own checks: same fields."""
    with pytest.raises(InvalidArgument) as info:
        validate_messages(messages)
    assert info.value.metadata.get("field") == field
    assert info.value.message.startswith("Invalid request: ")


@pytest.mark.parametrize(
    ("messages", "text"),
    [
        ([], "messages must contain at least one message"),
        ([Message("robot", "x")], "messages[0].role must be one of system, user, assistant, tool"),
        ([Message("user", "")], "messages[0].content is required"),
        (
            [Message("user", "hi"), Message("tool", "42")],
            "messages[1].tool_call_id is required for role tool",
        ),
        ([Message("system", "x")], "messages must include at least one non-system message"),
    ],
)
def test_service_wording_is_kept(messages: list[Message], text: str) -> None:
    """The texts the chat service's validate() used, word for word."""
    with pytest.raises(InvalidArgument) as info:
        validate_messages(messages)
    assert info.value.message == f"Invalid request: {text}"


@pytest.mark.parametrize(
    ("message", "field", "text"),
    [
        (
            Message("user", "hi", tool_calls=(ToolCall("t", "f", "{}"),)),
            "messages[0].tool_calls",
            "messages[0].tool_calls is only allowed for role assistant",
        ),
        (
            Message("assistant", "", tool_calls=(ToolCall("t", "f", "[1]"),)),
            "messages[0].tool_calls[0].arguments",
            "messages[0].tool_calls[0].arguments must be a JSON object",
        ),
        (
            Message("user", [{"type": "text", "text": 7}]),
            "messages[0].content[0]",
            "messages[0].content[0].text must be a string",
        ),
        (
            Message("user", ["just a string"]),  # type: ignore[list-item]
            "messages[0].content[0]",
            "messages[0].content[0].type must be one of text, image, document, image_url, got None",
        ),
        (
            Message("user", [{"type": "image_url", "image_url": {}}]),
            "messages[0].content[0]",
            "messages[0].content[0].image_url.url is required",
        ),
        (
            Message("user", [{"type": "image_url", "image_url": {"url": "data:image/png,AAA"}}]),
            "messages[0].content[0]",
            "messages[0].content[0].image_url.url: only base64 data: URLs are supported",
        ),
        (
            Message("user", [{"type": "image_url", "image_url": {"url": "ftp://x/a.png"}}]),
            "messages[0].content[0]",
            "messages[0].content[0].image_url.url must be an https:// or a data: URL",
        ),
        (
            Message("user", [{"type": "image"}]),
            "messages[0].content[0]",
            "messages[0].content[0].source must be an object",
        ),
        (
            Message("user", [{"type": "document", "source": "x"}]),
            "messages[0].content[0]",
            "messages[0].content[0].source must be an object",
        ),
    ],
)
def test_provider_checks_now_read_like_the_service(message: Message, field: str, text: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_messages([message])
    assert info.value.metadata["field"] == field
    assert info.value.message == f"Invalid request: {text}"


def test_first_bad_message_wins_before_the_all_system_check() -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_messages([Message("system", "x"), Message("system", "")])
    assert info.value.metadata["field"] == "messages[1].content"


@pytest.mark.parametrize(
    ("part", "image"),
    [
        ({"image_url": {"url": "data:image/gif;base64,R0"}}, DataImage("image/gif", "R0")),
        ({"image_url": "http://example.com/a.png"}, UrlImage("http://example.com/a.png")),
    ],
)
def test_parse_image_url(part: dict[str, Any], image: DataImage | UrlImage) -> None:
    assert parse_image_url(part) == image
