"""The completion request's limits, without a server."""

from __future__ import annotations

import pytest

from chatplane.chat.types import ChatRequest
from chatplane.chat.validation import validate
from chatplane.errors import InvalidArgument
from chatplane.llm.types import Message, ToolSpec

USER = (Message("user", "hi"),)


def check(request: ChatRequest) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as err:
        validate(request)
    return err.value


def test_valid_request_passes() -> None:
    validate(ChatRequest("p", USER, tools=(ToolSpec("t", "d", {"type": "object"}),)))


@pytest.mark.parametrize(
    ("request_", "field", "text"),
    [
        (ChatRequest("", USER), "projectId", "projectId is required"),
        (ChatRequest("p", ()), "messages", "at least one message"),
        (ChatRequest("p", (Message("bot", "x"),)), "messages[0].role", "must be one of"),
        (ChatRequest("p", (Message("system", "x"),)), "messages", "non-system"),
        (ChatRequest("p", USER, temperature=2.5), "temperature", "between 0 and 2"),
        (ChatRequest("p", USER, max_tokens=0), "maxTokens", "between 1 and 200000"),
        (ChatRequest("p", USER, max_tokens=200_001), "maxTokens", "between 1 and 200000"),
        (ChatRequest("p", USER, tier="huge"), "tier", "fast, balanced, powerful"),
        (
            ChatRequest("p", USER, tools=(ToolSpec("bad name", "d", {"a": 1}),)),
            "tools[0].name",
            "letters, digits",
        ),
        (ChatRequest("p", USER, tools=(ToolSpec("t", "", {"a": 1}),)), "tools[0].description", ""),
        (ChatRequest("p", USER, tools=(ToolSpec("t", "d", {}),)), "tools[0].parameters", ""),
    ],
)
def test_errors_name_the_field(request_: ChatRequest, field: str, text: str) -> None:
    error = check(request_)
    assert error.field == field
    assert error.metadata["field"] == field
    assert error.message.startswith("Invalid request: ")
    assert text in error.message
