"""Admission: one hit against a limiter, turned into domain errors.

Used by the API interceptor (per-tenant limit) and by the chat service (per-session limit),
which differ only in the key, the message and the reason.
"""

from __future__ import annotations

from chatplane.errors import RateLimited, Unavailable
from chatplane.ratelimit.windows import RateDecision, RateLimiter, RateLimiterUnavailable

__all__ = ["admit"]


async def admit(limiter: RateLimiter, key: str, *, message: str, reason: str) -> RateDecision:
    """Count one request for ``key``; return the decision if it is allowed.

    Raises :class:`~chatplane.errors.RateLimited` (with ``message``, ``reason`` and the
    denying window's figures) when denied, and :class:`~chatplane.errors.Unavailable`
    (``RATE_LIMITER_DOWN``) when the limiter's store cannot be reached: it never fails open.
    The allowed decision's :meth:`~RateDecision.headers` belong on the response.
    """
    try:
        decision = await limiter.hit(key)
    except RateLimiterUnavailable as exc:
        raise Unavailable("Rate limiter unavailable", reason="RATE_LIMITER_DOWN") from exc
    if not decision.allowed:
        raise RateLimited(
            message,
            reason=reason,
            limit=decision.limit,
            reset_seconds=decision.reset_seconds,
            retry_after=decision.retry_after,
        )
    return decision
