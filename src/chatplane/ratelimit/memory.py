"""In-process rolling limits: one replica, no I/O.

``hit`` never awaits, so it is atomic under asyncio concurrency without a lock. Work per hit
is O(buckets) at worst; keys whose buckets have all expired are evicted lazily (a few per hit,
oldest first) and by :meth:`InProcessRateLimiter.evict_expired`, so memory is bounded by the
keys active within the longest window.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

from chatplane.ratelimit.windows import _UNLIMITED, RateDecision, Window, _decide, _specs

__all__ = ["InProcessRateLimiter"]

# How many expired keys an in-process hit evicts at most (bounded work per hit; since a hit
# adds at most one key, this drains any backlog).
_EVICT_PER_HIT = 8


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
