"""`admit`: the one admission check shared by the interceptor and the per-session limit."""

from __future__ import annotations

import pytest

from chatplane.errors import ErrorKind, RateLimited, Unavailable
from chatplane.ratelimit import (
    InProcessRateLimiter,
    RateDecision,
    RateLimiterUnavailable,
    Window,
    admit,
)
from tests.unit.ratelimit._support import FakeClock


class DownLimiter:
    """A limiter whose store cannot be reached."""

    async def hit(self, key: str) -> RateDecision:
        raise RateLimiterUnavailable("rate limiter store unavailable: connection refused")

    async def aclose(self) -> None:
        pass


async def test_allowed_returns_the_decision() -> None:
    rl = InProcessRateLimiter([Window(60, 3)], clock=FakeClock(1000.25))
    d = await admit(rl, "t", message="Rate limit exceeded", reason="RATE_LIMIT_EXCEEDED")
    assert d == RateDecision(
        allowed=True, limit=3, remaining=2, reset_seconds=60, retry_after=0, window_seconds=60
    )
    assert d.headers()["x-ratelimit-remaining"] == "2"


async def test_denied_raises_rate_limited_with_the_figures() -> None:
    clock = FakeClock(7200.0)
    rl = InProcessRateLimiter([Window(60, 5), Window(3600, 2)], clock=clock)
    for _ in range(2):
        await admit(rl, "s", message="m", reason="R")
    clock.advance(60)
    with pytest.raises(RateLimited) as info:
        await admit(
            rl,
            "s",
            message="Session message rate limit exceeded",
            reason="SESSION_RATE_LIMIT_EXCEEDED",
        )
    err = info.value
    assert err.kind is ErrorKind.RESOURCE_EXHAUSTED
    assert (err.message, err.reason) == (
        "Session message rate limit exceeded",
        "SESSION_RATE_LIMIT_EXCEEDED",
    )
    # The hour window denied: its bucket 120 leaves at 10800, 3540 s from 7260.
    assert (err.limit, err.reset_seconds, err.retry_after) == (2, 3540, 3540)
    # Keys are independent; a denied hit was not counted.
    assert (await admit(rl, "other", message="m", reason="R")).allowed


async def test_default_reason_and_message_pass_through() -> None:
    rl = InProcessRateLimiter([Window(60, 1)], clock=FakeClock(1000.0))
    await admit(rl, "t", message="Rate limit exceeded", reason="RATE_LIMIT_EXCEEDED")
    with pytest.raises(RateLimited) as info:
        await admit(rl, "t", message="Rate limit exceeded", reason="RATE_LIMIT_EXCEEDED")
    assert str(info.value) == "Rate limit exceeded"
    assert info.value.reason == "RATE_LIMIT_EXCEEDED"
    assert (info.value.limit, info.value.reset_seconds, info.value.retry_after) == (1, 60, 60)


async def test_store_down_raises_unavailable() -> None:
    with pytest.raises(Unavailable) as info:
        await admit(DownLimiter(), "t", message="Rate limit exceeded", reason="R")
    err = info.value
    assert err.kind is ErrorKind.UNAVAILABLE
    assert (err.message, err.reason) == ("Rate limiter unavailable", "RATE_LIMITER_DOWN")
    assert isinstance(err.__cause__, RateLimiterUnavailable)
    assert not isinstance(err, RateLimited)
