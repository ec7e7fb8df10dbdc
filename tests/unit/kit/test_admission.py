"""InflightLimiter: admit up to the limit, queue up to `queue`, refuse the rest at once."""

from __future__ import annotations

import asyncio

import pytest

from chatplane.kit.admission import InflightLimiter


class Full(Exception):
    pass


async def test_sheds_beyond_the_limit_without_a_queue() -> None:
    limiter = InflightLimiter(2, refuse=Full)
    assert limiter.try_acquire() and limiter.try_acquire()
    assert not limiter.try_acquire()
    with pytest.raises(Full):
        await limiter.acquire()
    assert limiter.refused == 1 and limiter.in_flight == 2
    limiter.release()
    async with limiter:
        assert limiter.in_flight == 2
    assert limiter.in_flight == 1


async def test_queued_callers_get_slots_in_order() -> None:
    limiter = InflightLimiter(1, refuse=Full, queue=2)
    await limiter.acquire()
    order: list[int] = []

    async def worker(i: int) -> None:
        async with limiter:
            order.append(i)
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(worker(i)) for i in range(2)]
    await asyncio.sleep(0)
    assert limiter.waiting == 2
    with pytest.raises(Full):  # the queue is full too
        await limiter.acquire()
    limiter.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1] and limiter.in_flight == 0


async def test_a_cancelled_waiter_gives_its_place_up() -> None:
    limiter = InflightLimiter(1, refuse=Full, queue=1)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limiter.release()
    assert limiter.in_flight == 0 and limiter.waiting == 0
