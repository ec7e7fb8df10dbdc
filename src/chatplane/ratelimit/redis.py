"""Rolling limits shared by every replica through Redis.

One Lua script per hit (``rolling_window.lua`` next to this module, run with EVALSHA and
loaded on demand) checks every window, then increments, atomically. Each key is a single Redis
hash ``<prefix>:<key>`` with fields ``<window seconds>:<bucket index>``; stale fields are
deleted by the script and the hash carries a TTL that outlives its newest bucket, so nothing
leaks. The time comes from the *caller's* clock (``time.time`` by default), so replicas must
have synchronised clocks (NTP): a replica whose clock is skewed by ``d`` seconds sees the
windows shifted by ``d``. If Redis cannot be reached, ``hit`` raises
:class:`RateLimiterUnavailable`; it never silently allows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from chatplane.ratelimit.windows import (
    _UNLIMITED,
    RateDecision,
    RateLimiterUnavailable,
    Window,
    _decide,
    _specs,
)

__all__ = ["RedisRateLimiter"]

# Package data: shipped in the wheel with the package (hatch includes non-.py files).
_LUA = resources.files(__package__).joinpath("rolling_window.lua").read_text(encoding="utf-8")


class RedisRateLimiter:
    """Rolling limits shared by every replica through Redis. See the module docstring.

    ``timeout`` bounds connecting, each command and waiting for a pooled connection;
    a failure raises :class:`RateLimiterUnavailable`.
    """

    def __init__(
        self,
        url: str,
        windows: Sequence[Window],
        *,
        prefix: str = "chatplane:rl",
        clock: Callable[[], float] = time.time,
        timeout: float = 1.0,
        max_connections: int = 64,
    ) -> None:
        self._specs = _specs(windows)
        self._prefix = prefix
        self._clock = clock
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One quick reconnect (e.g. a pooled connection dropped by a Redis restart). If a
            # reply is lost after the script ran, the retry can count that request twice.
            retry=Retry(ExponentialWithJitterBackoff(cap=0.05, base=0.01), retries=1),
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._script = self._redis.register_script(_LUA)

    def redis_key(self, key: str) -> str:
        """The Redis hash holding ``key``'s counters."""
        return f"{self._prefix}:{key}"

    async def hit(self, key: str) -> RateDecision:
        specs = self._specs
        if not specs:
            return _UNLIMITED
        now = self._clock()
        args: list[int | str] = []
        ttl = 0.0
        for spec in specs:
            bucket = spec.bucket(now)
            args += [spec.seconds, bucket, spec.buckets, spec.limit]
            ttl = max(ttl, spec.expires_at(bucket) - now)
        ttl_ms = math.ceil(ttl * 1000) + 1000  # a second of slack for clock skew
        try:
            raw: Any = await self._script(keys=[self.redis_key(key)], args=[ttl_ms, *args])
        except (RedisError, OSError) as exc:
            raise RateLimiterUnavailable(f"rate limiter store unavailable: {exc}") from exc
        values = [int(v) for v in raw]
        rows = [(values[i], values[i + 1]) for i in range(1, len(values), 2)]
        if len(rows) != len(specs):
            raise RateLimiterUnavailable(f"unexpected rate limiter reply: {raw!r}")
        return _decide(now, specs, values[0] == 1, rows)

    async def aclose(self) -> None:
        await self._redis.aclose()
