"""Per-tenant rolling rate limits over several windows (by default one minute and one hour).

Algorithm
---------
Each window is split into about 60 sub-buckets: the bucket width is ``max(1, seconds // 60)``
seconds (1 s buckets for a 60 s window, 60 s buckets for a 1 h window) and the window counts
``ceil(seconds / width)`` buckets: the current one and the ones before it. A request is counted
in the bucket holding the time it was made and ages out when that whole bucket leaves the
window, so limits are *rolling to within one bucket*: a request stops counting between
``seconds - width`` and ``seconds`` after it was made (exactly ``seconds`` after the start of
its bucket). Requests therefore age out bucket by bucket, never all at once at a fixed
boundary.

A request is allowed only if *every* window has room; it is then counted in every window. A
denied request is not counted at all. A window whose limit is 0 or less is unlimited (ignored).

Implementations
---------------
* :class:`InProcessRateLimiter`: one process, no I/O. ``hit`` never awaits, so it is atomic
  under asyncio concurrency without a lock. Work per hit is O(buckets) at worst; keys whose
  buckets have all expired are evicted lazily (a few per hit, oldest first) and by
  :meth:`InProcessRateLimiter.evict_expired`, so memory is bounded by the keys active within
  the longest window.
* :class:`RedisRateLimiter`: shared by every replica through Redis. One Lua script per hit
  (EVALSHA, loaded on demand) checks every window, then increments, atomically. Each key is a
  single Redis hash ``<prefix>:<key>`` with fields ``<window seconds>:<bucket index>``; stale
  fields are deleted by the script and the hash carries a TTL that outlives its newest bucket,
  so nothing leaks. The time comes from the *caller's* clock (``time.time`` by default), so
  replicas must have synchronised clocks (NTP): a replica whose clock is skewed by ``d``
  seconds sees the windows shifted by ``d``. If Redis cannot be reached, ``hit`` raises
  :class:`RateLimiterUnavailable`; it never silently allows.

Each hit returns a :class:`RateDecision` describing the most constrained window, with
:meth:`RateDecision.headers` giving the ``x-ratelimit-*`` (and ``retry-after``) headers.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

__all__ = [
    "BUCKETS_PER_WINDOW",
    "InProcessRateLimiter",
    "RateDecision",
    "RateLimiter",
    "RateLimiterUnavailable",
    "RedisRateLimiter",
    "Window",
    "build_rate_limiter",
]

#: Target number of sub-buckets per window (the bucket width is whole seconds, at least 1).
BUCKETS_PER_WINDOW = 60

# How many expired keys an in-process hit evicts at most (bounded work per hit; since a hit
# adds at most one key, this drains any backlog).
_EVICT_PER_HIT = 8


class RateLimiterUnavailable(Exception):
    """The shared rate-limit store (Redis) could not be reached; the caller decides what to do."""


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` requests in any rolling ``seconds``; ``limit <= 0`` means unlimited."""

    seconds: int
    limit: int


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Outcome of one hit, described for a single window.

    * ``allowed``: whether the request may proceed (it has then been counted).
    * ``limit``: the limit of the window described: when allowed, the window with the fewest
      requests left (ties go to the longer window); when denied, the window that denied (if
      several did, the one that stays closed longest).
    * ``remaining``: requests left in that window after this one (0 when denied).
    * ``reset_seconds``: when allowed, whole seconds until that window has fully reset (every
      request counted so far has aged out); when denied, whole seconds until it has room again
      (equal to ``retry_after``). At least 1, except for the unlimited decision.
    * ``retry_after``: 0 when allowed; when denied, whole seconds (rounded up, at least 1)
      after which a retry will be allowed by every window, barring other traffic meanwhile.
    * ``window_seconds``: the length of the window described.

    If every window is unlimited, the decision is allowed with all other fields 0 and no headers.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int
    window_seconds: int

    def headers(self) -> dict[str, str]:
        """``x-ratelimit-limit``/``-remaining``/``-reset`` (+ ``retry-after`` when denied).

        ``x-ratelimit-reset`` is a delay in seconds, like ``retry-after``.
        """
        if self.limit <= 0:
            return {}
        out = {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset_seconds),
        }
        if not self.allowed:
            out["retry-after"] = str(self.retry_after)
        return out


_UNLIMITED = RateDecision(
    allowed=True, limit=0, remaining=0, reset_seconds=0, retry_after=0, window_seconds=0
)


class RateLimiter(Protocol):
    async def hit(self, key: str) -> RateDecision:
        """Count one request for ``key`` unless denied (a denied request is not counted)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Spec:
    """A limited window with its bucket geometry."""

    seconds: int
    limit: int
    width: int  # bucket width, seconds
    buckets: int  # number of buckets counted (the current one included)

    def bucket(self, now: float) -> int:
        return math.floor(now / self.width)

    def oldest_live(self, now: float) -> int:
        """Buckets with an index below this one have left the window."""
        return self.bucket(now) - self.buckets + 1

    def expires_at(self, bucket: int) -> float:
        """The time at which ``bucket`` leaves the window."""
        return float((bucket + self.buckets) * self.width)


def _specs(windows: Sequence[Window]) -> tuple[_Spec, ...]:
    specs: list[_Spec] = []
    seen: set[int] = set()
    for w in windows:
        if w.seconds < 1:
            raise ValueError(f"rate-limit window must be at least 1 second, got {w.seconds}")
        if w.limit <= 0:
            continue  # unlimited
        if w.seconds in seen:
            raise ValueError(f"duplicate rate-limit window of {w.seconds} seconds")
        seen.add(w.seconds)
        width = max(1, w.seconds // BUCKETS_PER_WINDOW)
        specs.append(_Spec(w.seconds, w.limit, width, -(-w.seconds // width)))
    return tuple(specs)


def _ceil_seconds(delay: float) -> int:
    return max(1, math.ceil(delay))


def _decide(
    now: float, specs: Sequence[_Spec], allowed: bool, rows: Sequence[tuple[int, int]]
) -> RateDecision:
    """Build the decision from one ``(count, bucket)`` row per spec.

    Allowed (every count is within its limit): ``count`` includes this request and ``bucket``
    is the window's newest bucket. Denied: ``count`` is the current count and, for windows at
    their limit, ``bucket`` is the one whose expiry brings the count below the limit.
    """
    if not specs:
        return _UNLIMITED
    if allowed:
        spec, (count, newest) = min(
            zip(specs, rows, strict=True),
            key=lambda item: (item[0].limit - item[1][0], -item[0].seconds),
        )
        return RateDecision(
            allowed=True,
            limit=spec.limit,
            remaining=max(0, spec.limit - count),
            reset_seconds=_ceil_seconds(spec.expires_at(newest) - now),
            retry_after=0,
            window_seconds=spec.seconds,
        )
    retry, spec = max(
        (
            (_ceil_seconds(spec.expires_at(room) - now), spec)
            for spec, (count, room) in zip(specs, rows, strict=True)
            if count >= spec.limit
        ),
        key=lambda item: (item[0], item[1].seconds),
    )
    return RateDecision(
        allowed=False,
        limit=spec.limit,
        remaining=0,
        reset_seconds=retry,
        retry_after=retry,
        window_seconds=spec.seconds,
    )


class _Counter:
    """One window of one key: non-empty buckets, oldest first, and their total."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()  # [bucket index, count]
        self.total = 0

    def prune(self, oldest_live: int) -> None:
        buckets = self.buckets
        while buckets and buckets[0][0] < oldest_live:
            self.total -= buckets.popleft()[1]

    def room_bucket(self, limit: int) -> int:
        """The bucket whose expiry brings the total below ``limit`` (total >= limit)."""
        need = self.total - limit + 1
        acc = 0
        for index, count in self.buckets:
            acc += count
            if acc >= need:
                return index
        return self.buckets[-1][0]  # not reached when total >= limit

    def add(self, bucket: int) -> int:
        """Count one request in ``bucket``; return the newest bucket index."""
        buckets = self.buckets
        if buckets and buckets[-1][0] >= bucket:
            # Same bucket, or the clock went backwards: keep the deque ordered.
            buckets[-1][1] += 1
        else:
            buckets.append([bucket, 1])
        self.total += 1
        return buckets[-1][0]


class _KeyState:
    __slots__ = ("counters", "expires_at")

    def __init__(self, n: int) -> None:
        self.counters = [_Counter() for _ in range(n)]
        self.expires_at = 0.0  # when every bucket of every window has expired


class InProcessRateLimiter:
    """Rolling limits kept in this process (one replica). See the module docstring."""

    def __init__(
        self, windows: Sequence[Window], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._specs = _specs(windows)
        self._clock = clock
        # Keys in order of their last counted hit, hence (for a monotonic clock) of expiry.
        self._keys: OrderedDict[str, _KeyState] = OrderedDict()

    def __len__(self) -> int:
        """Number of keys currently tracked."""
        return len(self._keys)

    async def hit(self, key: str) -> RateDecision:
        # No await in here: the whole check-and-count is atomic for asyncio.
        specs = self._specs
        if not specs:
            return _UNLIMITED
        now = self._clock()
        self._evict(now, _EVICT_PER_HIT)
        state = self._keys.get(key)
        if state is None:
            state = _KeyState(len(specs))
        counters = state.counters
        for spec, counter in zip(specs, counters, strict=True):
            counter.prune(spec.oldest_live(now))

        if any(c.total >= s.limit for s, c in zip(specs, counters, strict=True)):
            rows = [
                (c.total, c.room_bucket(s.limit) if c.total >= s.limit else 0)
                for s, c in zip(specs, counters, strict=True)
            ]
            return _decide(now, specs, False, rows)

        rows = []
        expires_at = 0.0
        for spec, counter in zip(specs, counters, strict=True):
            newest = counter.add(spec.bucket(now))
            rows.append((counter.total, newest))
            expires_at = max(expires_at, spec.expires_at(newest))
        state.expires_at = expires_at
        self._keys[key] = state
        self._keys.move_to_end(key)
        return _decide(now, specs, True, rows)

    def _evict(self, now: float, budget: int) -> None:
        keys = self._keys
        while budget > 0 and keys:
            state = next(iter(keys.values()))
            if state.expires_at > now:
                return
            keys.popitem(last=False)
            budget -= 1

    def evict_expired(self) -> int:
        """Drop every key whose buckets have all expired (O(keys)); return how many."""
        now = self._clock()
        dead = [k for k, state in self._keys.items() if state.expires_at <= now]
        for k in dead:
            del self._keys[k]
        return len(dead)

    async def aclose(self) -> None:
        self._keys.clear()


# KEYS[1]: the key's hash, fields "<window seconds>:<bucket index>" -> count.
# ARGV[1]: TTL (ms) for the hash after a counted hit (outlives its newest bucket).
# Then 4 values per limited window: seconds, current bucket index, buckets per window, limit.
# Returns {allowed (0/1), then per window: count, bucket}; see _decide for their meaning.
_LUA = """
local key = KEYS[1]
local ttl = tonumber(ARGV[1])
local byname = {}
local wins = {}
for base = 2, #ARGV, 4 do
  local w = {
    sec = ARGV[base], curname = ARGV[base + 1], cur = tonumber(ARGV[base + 1]),
    n = tonumber(ARGV[base + 2]), limit = tonumber(ARGV[base + 3]),
    total = 0, newest = tonumber(ARGV[base + 1]), buckets = {},
  }
  byname[w.sec] = w
  wins[#wins + 1] = w
end
local flat = redis.call('HGETALL', key)
local stale = {}
for i = 1, #flat, 2 do
  local sec, idx = string.match(flat[i], '^(%d+):(%-?%d+)$')
  local w = sec and byname[sec]
  if w then
    idx = tonumber(idx)
    if idx <= w.cur - w.n then
      stale[#stale + 1] = flat[i]
    else
      local c = tonumber(flat[i + 1])
      w.total = w.total + c
      w.buckets[#w.buckets + 1] = {idx, c}
      if idx > w.newest then w.newest = idx end
    end
  end
end
for i = 1, #stale, 100 do
  redis.call('HDEL', key, unpack(stale, i, math.min(i + 99, #stale)))
end
local allowed = 1
for _, w in ipairs(wins) do
  if w.total >= w.limit then allowed = 0 end
end
local out = {allowed}
for _, w in ipairs(wins) do
  if allowed == 1 then
    redis.call('HINCRBY', key, w.sec .. ':' .. w.curname, 1)
    out[#out + 1] = w.total + 1
    out[#out + 1] = w.newest
  else
    local room = 0
    if w.total >= w.limit then
      table.sort(w.buckets, function(a, b) return a[1] < b[1] end)
      local need = w.total - w.limit + 1
      local acc = 0
      for _, b in ipairs(w.buckets) do
        acc = acc + b[2]
        if acc >= need then
          room = b[1]
          break
        end
      end
    end
    out[#out + 1] = w.total
    out[#out + 1] = room
  end
end
if allowed == 1 and redis.call('PTTL', key) < ttl then
  redis.call('PEXPIRE', key, ttl)
end
return out
"""


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


def build_rate_limiter(windows: Sequence[Window], redis_url: str | None) -> RateLimiter:
    """Redis-backed (shared by replicas) when ``redis_url`` is set, in-process otherwise."""
    if redis_url:
        return RedisRateLimiter(redis_url, windows)
    return InProcessRateLimiter(windows)
