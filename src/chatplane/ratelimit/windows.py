"""Rolling windows: their bucket geometry and the decision a hit returns. Pure, no I/O.

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

The backends (:mod:`.memory`, :mod:`.redis`) only store counts; both turn them into a
:class:`RateDecision` with :func:`_decide`, so they agree on every figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

#: Target number of sub-buckets per window (the bucket width is whole seconds, at least 1).
BUCKETS_PER_WINDOW = 60


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
