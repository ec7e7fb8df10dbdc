"""Pieces of the agent turn that need no server: the queue, limits, http tool URLs."""

from __future__ import annotations

import asyncio

import pytest

from chatplane.errors import InvalidArgument, PermissionDenied, ResourceExhausted
from chatplane.runtime import TestContext, ToolMock
from chatplane.sessions.http_tools import HttpTools, ToolBlocked, build_url
from chatplane.sessions.queue import turn_queue
from chatplane.sessions.turn import validate_turn
from chatplane.sessions.types import TurnRequest


async def test_queue_sheds_beyond_running_plus_waiting() -> None:
    queue = turn_queue(running=1, waiting=1)
    release = asyncio.Event()
    entered: list[int] = []

    async def work(i: int) -> None:
        async with queue:
            entered.append(i)
            await release.wait()

    first = asyncio.create_task(work(1))
    second = asyncio.create_task(work(2))
    await asyncio.sleep(0)
    assert (queue.in_flight, queue.waiting, entered) == (1, 1, [1])  # one runs, one waits
    with pytest.raises(ResourceExhausted) as err:
        async with queue:
            pass
    assert err.value.message == "Execution queue full" and err.value.retry_after == 1
    release.set()
    await asyncio.gather(first, second)
    assert entered == [1, 2] and (queue.in_flight, queue.waiting) == (0, 0)


def test_turn_limits() -> None:
    write = frozenset({"session:execute", "project:write"})
    validate_turn(TurnRequest("p", "hi"), frozenset({"session:execute"}))
    with pytest.raises(InvalidArgument, match="message must be at least 1 character"):
        validate_turn(TurnRequest("p", "  "), write)
    with pytest.raises(InvalidArgument, match="environment"):
        validate_turn(TurnRequest("p", "hi", environment="prod"), write)
    with pytest.raises(PermissionDenied):
        validate_turn(TurnRequest("p", "hi", test=TestContext()), frozenset({"session:execute"}))
    many = TestContext(tool_mocks=tuple(ToolMock(f"t{i}") for i in range(51)))
    with pytest.raises(InvalidArgument, match="at most 50"):
        validate_turn(TurnRequest("p", "hi", test=many), write)


def test_http_tool_urls() -> None:
    assert build_url("https://x.io/o/{id}", "GET", {"id": "a b", "q": 1}) == (
        "https://x.io/o/a%20b?q=1",
        None,
    )
    assert build_url("https://x.io/o", "POST", {"id": 1}) == ("https://x.io/o", {"id": 1})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8080/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "ftp://example.com/x",
        "http://metadata.google.internal/x",
    ],
)
async def test_private_and_metadata_destinations_are_refused(url: str) -> None:
    with pytest.raises(ToolBlocked):
        await HttpTools().check_destination(url)


async def test_allowed_hosts_open_a_private_destination() -> None:
    await HttpTools(allowed_hosts=["127.0.0.1"]).check_destination("http://127.0.0.1:9/x")
    await HttpTools(allowed_hosts=["localhost:8080"]).check_destination("http://localhost:8080/")
