"""Per-tenant rolling rate limits over several windows (by default one minute and one hour).

Each window counts requests in about 60 sub-buckets, so a limit is rolling to within one
bucket; a request is allowed only if every window has room, and a denied request is not
counted. The window math (bucket geometry, decisions) is in :mod:`.windows`.

Implementations
---------------
* :class:`InProcessRateLimiter` (:mod:`.memory`): one process, no I/O, atomic under asyncio
  without a lock; idle keys are evicted, so memory is bounded by the keys active within the
  longest window.
* :class:`RedisRateLimiter` (:mod:`.redis`): shared by every replica through Redis, one Lua
  script per hit (``rolling_window.lua``); uses the caller's clock, so replicas need
  synchronised clocks. If Redis cannot be reached, ``hit`` raises
  :class:`RateLimiterUnavailable`; it never silently allows.

:func:`build_rate_limiter` picks one. Each hit returns a :class:`RateDecision` describing the
most constrained window, with :meth:`RateDecision.headers` giving the ``x-ratelimit-*`` (and
``retry-after``) headers. :func:`admit` (:mod:`.admission`) is the one way callers use a
limiter: it returns the allowed decision or raises the domain error for a denial or an
unreachable store.
"""

from __future__ import annotations

from collections.abc import Sequence

from chatplane.ratelimit.admission import admit
from chatplane.ratelimit.memory import InProcessRateLimiter
from chatplane.ratelimit.redis import RedisRateLimiter
from chatplane.ratelimit.windows import (
    BUCKETS_PER_WINDOW,
    RateDecision,
    RateLimiter,
    RateLimiterUnavailable,
    Window,
)

__all__ = [
    "BUCKETS_PER_WINDOW",
    "InProcessRateLimiter",
    "RateDecision",
    "RateLimiter",
    "RateLimiterUnavailable",
    "RedisRateLimiter",
    "Window",
    "admit",
    "build_rate_limiter",
]


def build_rate_limiter(windows: Sequence[Window], redis_url: str | None) -> RateLimiter:
    """Redis-backed (shared by replicas) when ``redis_url`` is set, in-process otherwise."""
    if redis_url:
        return RedisRateLimiter(redis_url, windows)
    return InProcessRateLimiter(windows)
