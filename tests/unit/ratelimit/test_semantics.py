"""The rate-limit semantics, run against both backends (in process and Redis).

The Redis variants skip when no server answers at 127.0.0.1:6379.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from chatplane.ratelimit import (
    InProcessRateLimiter,
    RateDecision,
    RateLimiter,
    RedisRateLimiter,
    Window,
    build_rate_limiter,
)
from tests.unit.ratelimit._support import (
    REDIS_URL,
    Factory,
    FakeClock,
    hits,
    redis_cleanup,
    redis_or_skip,
)


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Factory]:
    """Build limiters of one implementation; closes them (and cleans Redis) afterwards."""
    created: list[RateLimiter] = []
    prefix = await redis_or_skip() if request.param == "redis" else ""

    def factory(windows: Sequence[Window], clock: FakeClock) -> RateLimiter:
        limiter: RateLimiter
        if request.param == "redis":
            limiter = RedisRateLimiter(REDIS_URL, windows, prefix=prefix, clock=clock)
        else:
            limiter = InProcessRateLimiter(windows, clock=clock)
        created.append(limiter)
        return limiter

    yield factory
    for limiter in created:
        await limiter.aclose()
    if prefix:
        await redis_cleanup(prefix)


async def test_allows_up_to_limit_then_denies(make: Factory) -> None:
    clock = FakeClock(1000.25)
    rl = make([Window(60, 3)], clock)
    got = await hits(rl, "t", 3)
    assert [d.allowed for d in got] == [True, True, True]
    assert [d.remaining for d in got] == [2, 1, 0]
    assert all(d.limit == 3 and d.window_seconds == 60 and d.retry_after == 0 for d in got)
    assert got[0].reset_seconds == 60  # everything ages out at 1060 (ceil of 59.75)

    denied = await rl.hit("t")
    assert denied == RateDecision(
        allowed=False, limit=3, remaining=0, reset_seconds=60, retry_after=60, window_seconds=60
    )
    clock.advance(59.5)  # 1059.75: still inside the window
    late = await rl.hit("t")
    assert not late.allowed
    assert late.retry_after == 1
    clock.advance(0.25)  # 1060.0: exactly retry_after later
    assert (await rl.hit("t")).allowed


async def test_rolling_requests_age_out_bucket_by_bucket(make: Factory) -> None:
    clock = FakeClock(1000.0)
    rl = make([Window(60, 4)], clock)
    for _ in range(4):  # one request at 1000, 1010, 1020, 1030
        assert (await rl.hit("t")).allowed
        clock.advance(10)
    clock.now = 1030.0
    d = await rl.hit("t")
    assert not d.allowed
    assert d.retry_after == 30  # the 1000 request leaves at 1060

    clock.now = 1060.0  # only the oldest request aged out, not the whole window
    assert [x.allowed for x in await hits(rl, "t", 2)] == [True, False]
    clock.now = 1069.5
    d = await rl.hit("t")
    assert not d.allowed
    assert d.retry_after == 1  # the 1010 request leaves at 1070
    clock.now = 1070.0
    assert [x.allowed for x in await hits(rl, "t", 2)] == [True, False]


async def test_hour_bucket_granularity(make: Factory) -> None:
    # 1 h window -> 60 s buckets: a request at 1000 (bucket [960, 1020)) ages out at 4560,
    # i.e. rolling to within one bucket.
    clock = FakeClock(1000.0)
    rl = make([Window(3600, 1)], clock)
    assert (await rl.hit("t")).allowed
    clock.now = 1001.0
    d = await rl.hit("t")
    assert (d.allowed, d.retry_after, d.window_seconds) == (False, 3559, 3600)
    clock.now = 4559.5
    assert not (await rl.hit("t")).allowed
    clock.now = 4560.0
    assert (await rl.hit("t")).allowed


async def test_hour_denies_while_minute_has_room(make: Factory) -> None:
    clock = FakeClock(7200.0)  # bucket 120 of the hour window: ages out at 10800
    rl = make([Window(60, 5), Window(3600, 8)], clock)
    got = await hits(rl, "t", 5)
    assert all(d.allowed for d in got)
    assert (got[-1].window_seconds, got[-1].limit, got[-1].remaining) == (60, 5, 0)
    assert not (await rl.hit("t")).allowed  # minute full

    clock.advance(60)  # 7260: minute empty again, hour has 5 of 8
    got = await hits(rl, "t", 3)
    assert all(d.allowed for d in got)
    assert (got[0].window_seconds, got[0].remaining) == (3600, 2)  # the most constrained
    assert (got[-1].window_seconds, got[-1].limit, got[-1].remaining) == (3600, 8, 0)

    d = await rl.hit("t")
    assert d == RateDecision(
        allowed=False,
        limit=8,
        remaining=0,
        reset_seconds=3540,
        retry_after=3540,
        window_seconds=3600,
    )
    assert d.headers()["retry-after"] == "3540"


async def test_both_windows_full_reports_the_longest_wait(make: Factory) -> None:
    clock = FakeClock(7200.0)
    rl = make([Window(60, 2), Window(3600, 2)], clock)
    await hits(rl, "t", 2)
    d = await rl.hit("t")
    assert (d.allowed, d.window_seconds, d.retry_after) == (False, 3600, 3600)


async def test_denied_requests_are_not_counted(make: Factory) -> None:
    clock = FakeClock(1000.0)
    rl = make([Window(60, 2)], clock)
    assert all(d.allowed for d in await hits(rl, "t", 2))
    clock.now = 1030.0
    assert not any(d.allowed for d in await hits(rl, "t", 10))
    clock.now = 1060.0  # the 1000 requests aged out; the denied 1030 ones never counted
    assert [d.allowed for d in await hits(rl, "t", 3)] == [True, True, False]


async def test_keys_are_isolated(make: Factory) -> None:
    clock = FakeClock()
    rl = make([Window(60, 2)], clock)
    assert [d.allowed for d in await hits(rl, "tenant-a", 3)] == [True, True, False]
    b = await rl.hit("tenant-b")
    assert b.allowed
    assert b.remaining == 1


async def test_unlimited_windows(make: Factory) -> None:
    clock = FakeClock()
    rl = make([Window(60, 0), Window(3600, 2)], clock)
    got = await hits(rl, "t", 3)
    assert [d.allowed for d in got] == [True, True, False]
    assert got[-1].window_seconds == 3600

    free = make([Window(60, 0), Window(3600, -1)], clock)
    d = (await hits(free, "t", 100))[-1]
    assert d.allowed
    assert d.headers() == {}


async def test_concurrent_hits_allow_exactly_the_limit(make: Factory) -> None:
    clock = FakeClock()
    rl = make([Window(60, 50), Window(3600, 1000)], clock)
    got = await asyncio.gather(*(rl.hit("t") for _ in range(200)))
    assert sum(d.allowed for d in got) == 50
    assert all(d.retry_after >= 1 for d in got if not d.allowed)


async def test_build_rate_limiter() -> None:
    rl = build_rate_limiter([Window(60, 1)], None)
    assert isinstance(rl, InProcessRateLimiter)
    await rl.aclose()
    shared = build_rate_limiter([Window(60, 1)], REDIS_URL)
    assert isinstance(shared, RedisRateLimiter)
    await shared.aclose()
