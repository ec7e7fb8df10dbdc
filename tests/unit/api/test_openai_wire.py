"""OpenAI wire conversions without a server: request parsing, stop sequences, chunks."""

from __future__ import annotations

import json

import pytest

from chatplane.api import openai_request as oreq
from chatplane.api import openai_wire as wire
from chatplane.chat.types import ModelSource, StreamCompleted, StreamMetadata
from chatplane.errors import InvalidArgument
from chatplane.llm.types import TextDelta, TokenUsage


def test_parse_request() -> None:
    body = {
        "model": "balanced",
        "messages": [
            {"role": "developer", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "max_tokens": 10,
        "max_completion_tokens": 20,
        "stream": True,
        "stream_options": {"include_usage": True},
        "stop": "END",
    }
    request, options = oreq.parse_request(json.dumps(body).encode(), "p1")
    assert request.tier == "balanced" and request.model_id == ""
    assert request.messages[0].role == "system"
    assert request.messages[2].tool_calls[0].name == "f"
    assert request.tools[0].description == "f"
    assert request.tools[0].parameters == {"type": "object", "properties": {}}
    assert request.max_tokens == 20
    assert options.stream and options.include_usage and options.stop == ("END",)
    no_tools, _ = oreq.parse_request(json.dumps({**body, "tool_choice": "none"}).encode(), "p1")
    assert no_tools.tools == ()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"not json", "body"),
        (b'{"messages": []}', "model"),
        (b'{"model": "m", "messages": [{"role": "function"}]}', "messages[0].role"),
        (b'{"model": "m", "messages": [{"role": "user"}], "n": 2}', "n"),
        (b'{"model": "m", "messages": [{"role": "user"}], "stop": [1]}', "stop"),
        (b'{"model": "m", "messages": [{"role": "user"}], "max_tokens": "9"}', "max_tokens"),
    ],
)
def test_parse_errors(body: bytes, param: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        oreq.parse_request(body, "p1")
    assert raised.value.metadata["field"] == param


def test_stop_cutter_holds_back_a_possible_start() -> None:
    cutter = wire.StopCutter(("STOP",))
    assert cutter.feed("abc ST") == "abc "
    assert cutter.feed("Xyz") == "STXyz"
    assert cutter.feed(" S") == " "
    assert cutter.feed("TOP and more") == ""
    assert cutter.stopped and cutter.flush() == "" and cutter.feed("x") == ""


def test_chunks_end_with_usage_and_done() -> None:
    encoder = wire.ChunkEncoder(oreq.OpenAiOptions(model="fast", stream=True, include_usage=True))
    frames = b"".join(
        [
            encoder.frame(StreamMetadata("chatplane-local-echo", "local", ModelSource.TIER)),
            encoder.frame(TextDelta("Hi")),
            encoder.frame(StreamCompleted(TokenUsage(3, 1), None, 5)),
        ]
    ).split(b"\n\n")
    assert frames[-2:] == [b"data: [DONE]", b""]
    chunks = [json.loads(f[6:]) for f in frames[:-2]]
    assert chunks[0]["model"] == "chatplane-local-echo"
    assert chunks[1]["choices"][0]["delta"] == {"content": "Hi"}
    assert chunks[2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[3]["choices"] == [] and chunks[3]["usage"]["total_tokens"] == 4
    assert all(c["usage"] is None for c in chunks[:3])


def test_param_names() -> None:
    assert oreq.openai_param("maxTokens") == "max_tokens"
    assert oreq.openai_param("tools[2].parameters") == "tools[2].function.parameters"
    assert oreq.openai_param("messages[0].tool_call_id") == "messages[0].tool_call_id"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("end_turn", "stop"), ("max_tokens", "length"), ("refusal", "content_filter"), ("", "stop")],
)
def test_a_stream_finishes_with_the_providers_reason(reason: str, expected: str) -> None:
    # No max_tokens in the request: the server's default budget can still run out.
    encoder = wire.ChunkEncoder(oreq.OpenAiOptions(model="fast", stream=True))
    encoder.frame(StreamMetadata("chatplane-local-echo", "local", ModelSource.TIER))
    frames = encoder.frame(StreamCompleted(TokenUsage(3, 1), None, 5, reason)).split(b"\n\n")
    assert json.loads(frames[0][6:])["choices"][0]["finish_reason"] == expected
