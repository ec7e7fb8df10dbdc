"""Stream frame coalescing: ready frames travel together, none waits for another."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from chatplane.api.coalesce import coalesce


def render(item: str) -> bytes:
    return item.encode()


async def bursts(*groups: list[str], gap: float = 0.05) -> AsyncIterator[str]:
    for i, group in enumerate(groups):
        if i:
            await asyncio.sleep(gap)  # the next network read
        for item in group:
            yield item


async def test_frames_ready_together_leave_together() -> None:
    out = [chunk async for chunk in coalesce(bursts(["a", "b", "c"], ["d"], ["e", "f"]), render)]
    assert out == [b"abc", b"d", b"ef"]


async def test_a_lone_frame_is_not_held_back() -> None:
    arrivals: list[float] = []
    started = time.perf_counter()
    async for _ in coalesce(bursts(["a"], ["b"], gap=0.2), render):
        arrivals.append(time.perf_counter() - started)
    assert arrivals[0] < 0.1 and arrivals[1] >= 0.2


async def test_error_after_frames_is_raised_after_them() -> None:
    async def failing() -> AsyncIterator[str]:
        yield "a"
        yield "b"
        raise ValueError("upstream broke")

    received: list[bytes] = []
    with pytest.raises(ValueError, match="upstream broke"):
        async for chunk in coalesce(failing(), render):
            received.append(chunk)
    assert received == [b"ab"]


async def test_closing_early_closes_the_source() -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[str]:
        try:
            while True:
                yield "x"
                await asyncio.sleep(0.01)
        finally:
            closed.set()

    stream = coalesce(endless(), render)
    assert await anext(stream) == b"x"
    await stream.aclose()
    await asyncio.wait_for(closed.wait(), 1)
