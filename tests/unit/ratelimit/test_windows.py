"""Window geometry and decisions: the pure part, no backend involved."""

from __future__ import annotations

import pytest

from chatplane.ratelimit import BUCKETS_PER_WINDOW, InProcessRateLimiter, RateDecision, Window
from chatplane.ratelimit.windows import _decide, _Spec, _specs


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


def test_bucket_geometry() -> None:
    minute, hour, odd = _specs([Window(60, 5), Window(3600, 8), Window(150, 1)])
    assert minute == _Spec(seconds=60, limit=5, width=1, buckets=60)
    assert hour == _Spec(seconds=3600, limit=8, width=60, buckets=BUCKETS_PER_WINDOW)
    assert odd == _Spec(seconds=150, limit=1, width=2, buckets=75)
    # A request at 1000 sits in hour bucket 16 ([960, 1020)) and leaves at 4560.
    assert hour.bucket(1000.0) == 16
    assert hour.expires_at(16) == 4560.0
    assert hour.oldest_live(4560.0) == 17
    assert minute.oldest_live(1000.5) == 941


def test_unlimited_windows_are_dropped() -> None:
    assert _specs([Window(60, 0), Window(3600, -1)]) == ()
    # Unlimited windows are not checked for duplicates either.
    assert [s.seconds for s in _specs([Window(60, 0), Window(60, 5)])] == [60]


def test_decide_without_limits_is_unlimited() -> None:
    d = _decide(1000.0, (), True, [])
    assert d == RateDecision(
        allowed=True, limit=0, remaining=0, reset_seconds=0, retry_after=0, window_seconds=0
    )
    assert d.headers() == {}


def test_decide_allowed_describes_the_window_with_least_room() -> None:
    specs = _specs([Window(60, 5), Window(3600, 8)])
    d = _decide(7200.0, specs, True, [(5, 7200), (5, 120)])
    assert (d.allowed, d.window_seconds, d.limit, d.remaining) == (True, 60, 5, 0)
    assert (d.reset_seconds, d.retry_after) == (60, 0)
    # Equal room left: the longer window is described.
    d = _decide(7200.0, specs, True, [(3, 7200), (6, 120)])
    assert (d.window_seconds, d.remaining, d.reset_seconds) == (3600, 2, 3600)


def test_decide_denied_reports_the_longest_wait() -> None:
    specs = _specs([Window(60, 5), Window(3600, 8)])
    # Only the minute is full: its room comes back when bucket 7190 leaves, at 7250.
    d = _decide(7200.5, specs, False, [(5, 7190), (6, 0)])
    assert d == RateDecision(
        allowed=False, limit=5, remaining=0, reset_seconds=50, retry_after=50, window_seconds=60
    )
    # Both full: the hour (bucket 120 leaves at 10800) keeps the request out longest.
    d = _decide(7200.5, specs, False, [(5, 7190), (8, 120)])
    assert (d.window_seconds, d.limit, d.retry_after, d.reset_seconds) == (3600, 8, 3600, 3600)
