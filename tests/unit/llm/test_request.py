"""Anthropic request building: conversion of validated messages and tools."""

from __future__ import annotations

import pytest

from chatplane.errors import InvalidArgument
from chatplane.llm.anthropic import AnthropicProvider
from chatplane.llm.anthropic.request import build_request, convert_messages, convert_tools
from chatplane.llm.types import CompletionParams, Message, ToolCall, ToolSpec
from tests.fakes.anthropic import FakeAnthropic
from tests.unit.llm.helpers import MODEL, WEATHER

pytest_plugins = ["tests.unit.llm.fixtures"]


async def test_message_conversion_as_received_upstream(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    conversation = (
        Message("system", "You are terse."),
        Message("user", "Weather in Oslo and Rome?"),
        Message("system", "Use metric units."),
        Message(
            "assistant",
            "",
            tool_calls=(
                ToolCall("toolu_a", "get_weather", '{"city": "Oslo"}'),
                ToolCall("toolu_b", "get_weather", '{"city": "Rome"}'),
            ),
        ),
        Message("tool", "3 C", tool_call_id="toolu_a"),
        Message("tool", [{"type": "text", "text": "18 C"}], tool_call_id="toolu_b"),
        Message("user", [{"type": "text", "text": "Summarize."}]),
    )
    await provider.complete(
        CompletionParams(MODEL, conversation, tools=(WEATHER,), temperature=0.7, max_tokens=500)
    )
    sent = fake.last_request
    body = sent.body
    assert body["model"] == MODEL and body["max_tokens"] == 500
    assert body["system"] == "You are terse.\n\nUse metric units."
    # Sampling parameters are rejected by API version 2026-10-21: never sent.
    assert "temperature" not in body
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"] == [{"type": "text", "text": "Weather in Oslo and Rome?"}]
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"city": "Rome"}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "3 C"},
        {
            "type": "tool_result",
            "tool_use_id": "toolu_b",
            "content": [{"type": "text", "text": "18 C"}],
        },
        {"type": "text", "text": "Summarize."},
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER.parameters,
        }
    ]
    assert sent.headers["authorization"] == f"Bearer {fake.api_key}"
    assert sent.headers["anthropic-version"]


def test_convert_messages_content_parts() -> None:
    anthropic_image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAA"},
    }
    system, messages = convert_messages(
        [
            Message(
                "user",
                [
                    {"type": "text", "text": "What is in these?"},
                    anthropic_image,
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            )
        ]
    )
    assert system is None
    assert messages[0]["content"][1:] == [
        anthropic_image,
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
    ]


def test_blank_text_is_dropped_and_cache_control_kept() -> None:
    system, messages = convert_messages(
        [
            Message("system", [{"type": "text", "text": "  "}]),
            Message("user", "   "),
            Message(
                "user",
                [
                    {"type": "text", "text": ""},
                    {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}},
                ],
            ),
        ]
    )
    assert system is None
    assert messages == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}],
        }
    ]


def test_only_blank_turns_left_is_invalid() -> None:
    """Anthropic's own rule (no empty text blocks), not a shape check: stays here."""
    with pytest.raises(InvalidArgument) as info:
        convert_messages([Message("system", "Be brief."), Message("user", " \n ")])
    assert info.value.metadata["field"] == "messages"
    assert info.value.message.startswith("Invalid request: ")


def test_unvalidated_input_is_a_programming_error() -> None:
    with pytest.raises(AssertionError):
        convert_messages([Message("robot", "hi")])


def test_build_request_and_tools() -> None:
    bare = ToolSpec("ping", "", {})
    request = build_request(
        CompletionParams(MODEL, (Message("user", "hi"),), tools=(WEATHER, bare), temperature=1.0)
    )
    assert (request.model, request.max_tokens, request.system) == (MODEL, 4096, None)
    assert request.messages == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert request.tools == convert_tools([WEATHER, bare])
    assert request.tools[1] == {
        "name": "ping",
        "input_schema": {"type": "object", "properties": {}},
    }
