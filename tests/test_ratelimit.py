"""Rolling per-tenant rate limits, in process and shared through Redis (127.0.0.1:6379).

Every test injects a fake clock; the Redis tests skip when no server answers and use a
unique key prefix that they delete afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
import redis.asyncio as aioredis

from chatplane.ratelimit import (
    InProcessRateLimiter,
    RateDecision,
    RateLimiter,
    RateLimiterUnavailable,
    RedisRateLimiter,
    Window,
    build_rate_limiter,
)

REDIS_URL = "redis://127.0.0.1:6379/0"


class FakeClock:
    def __init__(self, now: float = 1000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


Factory = Callable[[Sequence[Window], FakeClock], RateLimiter]


async def redis_or_skip() -> str:
    """A fresh key prefix, or skip the test when Redis does not answer."""
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        await asyncio.wait_for(client.ping(), 2.0)
    except (OSError, TimeoutError, aioredis.RedisError) as exc:
        pytest.skip(f"Redis at 127.0.0.1:6379 does not answer: {exc!r}")
    finally:
        await client.aclose()
    return f"test:rl:{uuid.uuid4().hex}"


async def redis_cleanup(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = await redis_or_skip()
    yield prefix
    await redis_cleanup(prefix)


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


async def hits(limiter: RateLimiter, key: str, n: int) -> list[RateDecision]:
    return [await limiter.hit(key) for _ in range(n)]


# --- semantics, for both implementations ---------------------------------------------------


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


# --- RateDecision -------------------------------------------------------------------------


def test_headers() -> None:
    ok = RateDecision(
        allowed=True, limit=10, remaining=3, reset_seconds=42, retry_after=0, window_seconds=60
    )
    assert ok.headers() == {
        "x-ratelimit-limit": "10",
        "x-ratelimit-remaining": "3",
        "x-ratelimit-reset": "42",
    }
    no = RateDecision(
        allowed=False, limit=10, remaining=0, reset_seconds=7, retry_after=7, window_seconds=60
    )
    assert no.headers() == {
        "x-ratelimit-limit": "10",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "7",
        "retry-after": "7",
    }


def test_invalid_windows() -> None:
    with pytest.raises(ValueError, match="at least 1 second"):
        InProcessRateLimiter([Window(0, 5)])
    with pytest.raises(ValueError, match="duplicate"):
        InProcessRateLimiter([Window(60, 5), Window(60, 9)])


# --- in-process specifics -----------------------------------------------------------------


async def test_in_process_evicts_idle_keys() -> None:
    clock = FakeClock(1000.0)
    rl = InProcessRateLimiter([Window(60, 5), Window(3600, 100)], clock=clock)
    for i in range(100):
        await rl.hit(f"idle-{i}")
    assert len(rl) == 100

    clock.advance(120)  # minute buckets expired, hour buckets not: nothing to evict
    await rl.hit("busy")
    assert rl.evict_expired() == 0
    assert len(rl) == 101

    clock.now = 1000.0 + 3600 + 60  # every idle key's hour bucket has expired
    await rl.hit("busy")  # lazily: a bounded number per hit (8), oldest first
    assert len(rl) == 101 - 8
    for _ in range(19):
        await rl.hit("busy")
    assert len(rl) == 1  # only "busy" is left
    assert not (await rl.hit("busy")).allowed  # and it kept its own counts (5 in the minute)

    # A full sweep drops everything expired at once.
    for i in range(50):
        await rl.hit(f"other-{i}")
    clock.advance(3600 + 60)
    assert rl.evict_expired() == 51
    assert len(rl) == 0

    # A denied hit for an unknown key stores nothing.
    full = InProcessRateLimiter([Window(60, 1)], clock=clock)
    await full.hit("a")
    await full.hit("a")
    assert len(full) == 1


async def test_in_process_lazy_eviction_keeps_memory_bounded() -> None:
    clock = FakeClock(0.0)
    rl = InProcessRateLimiter([Window(60, 5)], clock=clock)
    for i in range(5000):  # a new tenant every 0.1 s: at most ~60 s worth are live
        clock.now = i * 0.1
        await rl.hit(f"k{i}")
    assert len(rl) <= 700


async def test_build_rate_limiter() -> None:
    rl = build_rate_limiter([Window(60, 1)], None)
    assert isinstance(rl, InProcessRateLimiter)
    await rl.aclose()
    shared = build_rate_limiter([Window(60, 1)], REDIS_URL)
    assert isinstance(shared, RedisRateLimiter)
    await shared.aclose()


# --- Redis specifics ----------------------------------------------------------------------


async def test_two_replicas_share_one_limit(redis_prefix: str) -> None:
    clock = FakeClock()
    windows = [Window(60, 5), Window(3600, 100)]
    a = RedisRateLimiter(REDIS_URL, windows, prefix=redis_prefix, clock=clock)
    b = RedisRateLimiter(REDIS_URL, windows, prefix=redis_prefix, clock=clock)
    try:
        got = [await (a if i % 2 else b).hit("t") for i in range(8)]
        assert [d.allowed for d in got] == [True] * 5 + [False] * 3
        assert [d.remaining for d in got[:5]] == [4, 3, 2, 1, 0]
        both = await asyncio.gather(*(r.hit("t2") for r in (a, b) for _ in range(10)))
        assert sum(d.allowed for d in both) == 5
    finally:
        await a.aclose()
        await b.aclose()


async def test_redis_keys_expire_and_stale_buckets_are_dropped(redis_prefix: str) -> None:
    clock = FakeClock(1000.0)
    rl = RedisRateLimiter(REDIS_URL, [Window(60, 100)], prefix=redis_prefix, clock=clock)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        key = rl.redis_key("t")
        for _ in range(30):  # 30 distinct 1 s buckets
            await rl.hit("t")
            clock.advance(1)
        assert await client.hlen(key) == 30
        ttl = await client.pttl(key)
        assert 0 < ttl <= 62_000
        clock.advance(120)
        await rl.hit("t")
        assert await client.hlen(key) == 1
    finally:
        await client.aclose()
        await rl.aclose()


async def test_redis_unreachable_raises() -> None:
    rl = RedisRateLimiter("redis://127.0.0.1:1/0", [Window(60, 5)], timeout=0.5)
    try:
        with pytest.raises(RateLimiterUnavailable):
            await asyncio.wait_for(rl.hit("t"), 3.0)
    finally:
        await rl.aclose()
