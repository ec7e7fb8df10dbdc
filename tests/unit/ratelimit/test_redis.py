"""Redis specifics: replicas share one limit, keys expire, an unreachable store raises.

These skip when no Redis answers at 127.0.0.1:6379 (except the unreachable-store test).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from importlib import resources

import pytest
import redis.asyncio as aioredis

from chatplane.ratelimit import RateLimiterUnavailable, RedisRateLimiter, Window
from tests.unit.ratelimit._support import REDIS_URL, FakeClock, redis_cleanup, redis_or_skip


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = await redis_or_skip()
    yield prefix
    await redis_cleanup(prefix)


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


def test_lua_script_is_package_data() -> None:
    script = resources.files("chatplane.ratelimit").joinpath("rolling_window.lua")
    assert script.is_file()
    text = script.read_text(encoding="utf-8")
    assert "redis.call('HINCRBY'" in text
    assert "PEXPIRE" in text
