"""Provider-neutral types: collect() and TokenUsage."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatplane.errors import Unavailable
from chatplane.llm.types import (
    Completion,
    Finish,
    ProviderEvent,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallEnd,
    UsageUpdate,
    collect,
)


async def test_collect_without_finish_is_an_error() -> None:
    async def truncated() -> AsyncIterator[ProviderEvent]:
        yield TextDelta("partial")

    with pytest.raises(Unavailable):
        await collect(truncated())


async def test_collect_joins_text_and_tool_calls() -> None:
    usage = TokenUsage(3, 2, cache_read_tokens=1)

    async def events() -> AsyncIterator[ProviderEvent]:
        yield UsageUpdate(TokenUsage(3, 0))
        yield TextDelta("a")
        yield TextDelta("b")
        yield ToolCallEnd("t1", "f", "{}")
        yield Finish("tool_use", usage)

    assert await collect(events()) == Completion(
        "ab", (ToolCall("t1", "f", "{}"),), "tool_use", usage
    )


def test_total_tokens_is_input_plus_output() -> None:
    assert TokenUsage(5, 7, cache_read_tokens=100, cache_write_tokens=10).total_tokens == 12
