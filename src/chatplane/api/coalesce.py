"""Coalescing of stream frames that are ready at the same moment.

A pump task drains the source into a queue; the consumer takes the first frame as soon as
it exists plus every frame already queued behind it. Frames the upstream delivered in one
network read leave in one message, and none waits for another: a frame alone is sent at
once. Fewer gRPC messages per stream is less CPU per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TypeVar

T = TypeVar("T")

MAX_CHUNK = 1024 * 1024
"""Largest piece yielded at once. The output is a byte stream (SSE), so a frame larger than
this (a model echoing megabytes in one delta) leaves in several messages, each well under
grpc's send limit; the client sees the same bytes."""

_END = object()


async def coalesce(
    source: AsyncIterator[T], render: Callable[[T], bytes]
) -> AsyncGenerator[bytes, None]:
    """Yield `render(item)` bytes of `source`, joining the items already available.

    An exception from the source is raised after the frames before it have been yielded;
    closing this generator cancels the pump, which closes the source.
    """
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in source:
                queue.put_nowait(render(item))
        except Exception as exc:  # handed to the consumer, raised there
            queue.put_nowait(exc)
        else:
            queue.put_nowait(_END)

    task = asyncio.create_task(pump())
    try:
        while True:
            parts = [await queue.get()]
            while not queue.empty():
                parts.append(queue.get_nowait())
            frames = [p for p in parts if isinstance(p, bytes)]
            if frames:
                data = b"".join(frames)
                for start in range(0, len(data), MAX_CHUNK):
                    yield data[start : start + MAX_CHUNK]
            last = parts[-1]
            if last is _END:
                return
            if isinstance(last, Exception):
                raise last
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
