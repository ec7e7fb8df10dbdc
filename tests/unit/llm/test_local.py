"""The built-in local echo provider."""

from __future__ import annotations

import json
import typing

import pytest

from chatplane.errors import InvalidArgument
from chatplane.llm.local import LocalProvider, count_tokens
from chatplane.llm.models import DEFAULT_MODEL, LOCAL_MODEL
from chatplane.llm.types import (
    CompletionParams,
    Finish,
    Message,
    TextDelta,
    TokenUsage,
    UsageUpdate,
)
from tests.unit.llm.helpers import WEATHER, events_of, params


def local_params(*messages: Message, **kwargs: typing.Any) -> CompletionParams:
    return CompletionParams(LOCAL_MODEL, messages, **kwargs)


async def test_local_provider_is_deterministic() -> None:
    local = LocalProvider()
    p = local_params(Message("system", "Be nice."), Message("user", "Hello, world!"))
    first = await events_of(local, p)
    assert first == await events_of(local, p)
    completion = await local.complete(p)
    assert completion.content.startswith("You said: Hello, world!")
    assert "Claude" not in completion.content
    assert completion.finish_reason == "end_turn"


async def test_local_provider_counts_tokens_by_its_rule() -> None:
    local = LocalProvider()
    p = local_params(Message("system", "Be nice."), Message("user", "Hello, world!"))
    events = await events_of(local, p)
    finish = events[-1]
    assert isinstance(finish, Finish)
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert (
        finish.usage.output_tokens == len(deltas) == count_tokens("".join(d.delta for d in deltas))
    )
    # tokens = matches of \w+|[^\w\s]: "Be" "nice" "." + "Hello" "," "world" "!"
    assert finish.usage.input_tokens == 7
    assert events[-2] == UsageUpdate(finish.usage)
    with_tools = await local.complete(
        local_params(
            Message("system", "Be nice."), Message("user", "Hello, world!"), tools=(WEATHER,)
        )
    )
    spec = {
        "name": WEATHER.name,
        "description": WEATHER.description,
        "parameters": WEATHER.parameters,
    }
    assert with_tools.usage.input_tokens == 7 + count_tokens(json.dumps(spec, sort_keys=True))


async def test_local_provider_respects_max_tokens() -> None:
    events = await events_of(
        LocalProvider(), local_params(Message("user", "a b c d e f"), max_tokens=3)
    )
    assert [type(e) for e in events] == [TextDelta] * 3 + [UsageUpdate, Finish]
    assert events[-1] == Finish("max_tokens", TokenUsage(6, 3))


async def test_local_provider_tool_call() -> None:
    local = LocalProvider()
    completion = await local.complete(
        local_params(Message("user", "Please use get_weather for Oslo"), tools=(WEATHER,))
    )
    assert completion.finish_reason == "tool_use"
    assert [(c.name, c.arguments) for c in completion.tool_calls] == [("get_weather", "{}")]
    # A tool result is answered, not met with another call.
    call = completion.tool_calls[0]
    follow_up = await local.complete(
        local_params(
            Message("user", "Please use get_weather for Oslo"),
            Message("assistant", completion.content, tool_calls=(call,)),
            Message("tool", "3 C", tool_call_id=call.id),
            tools=(WEATHER,),
        )
    )
    assert follow_up.finish_reason == "end_turn" and "3 C" in follow_up.content


async def test_local_provider_refuses_other_models() -> None:
    with pytest.raises(InvalidArgument):
        await LocalProvider().complete(params(model=DEFAULT_MODEL))
