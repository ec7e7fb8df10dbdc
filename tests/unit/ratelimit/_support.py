"""Helpers shared by the rate-limit tests: a fake clock and a disposable Redis key prefix.

Every test injects a fake clock; the Redis tests skip when no server answers at
127.0.0.1:6379 and use a unique key prefix that they delete afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence

import pytest
import redis.asyncio as aioredis

from chatplane.ratelimit import RateDecision, RateLimiter, Window

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


async def hits(limiter: RateLimiter, key: str, n: int) -> list[RateDecision]:
    return [await limiter.hit(key) for _ in range(n)]
