"""Backoff: exponential with jitter, bounded retries, retry-after honoured up to a cap."""

from __future__ import annotations

import pytest

from chatplane.kit.retry import Backoff


def no_jitter(low: float, high: float) -> float:
    return (low + high) / 2


def test_exponential_delays_until_retries_run_out() -> None:
    backoff = Backoff(max_retries=3, base_delay=0.2)
    delays = [backoff.delay(attempt, uniform=no_jitter) for attempt in range(4)]
    assert delays[:3] == pytest.approx([0.2, 0.4, 0.8])
    assert delays[3] is None


def test_jitter_is_plus_minus_twenty_percent() -> None:
    backoff = Backoff(base_delay=1.0)
    bounds: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        bounds.append((low, high))
        return high

    assert backoff.delay(1, uniform=record) == pytest.approx(2.4)
    assert bounds == [(0.8, 1.2)]
    for _ in range(50):
        delay = backoff.delay(0)
        assert delay is not None and 0.8 <= delay <= 1.2


def test_retry_after_is_a_floor_up_to_its_cap() -> None:
    backoff = Backoff(base_delay=0.2, max_retry_after=10.0)
    assert backoff.delay(0, 3.0, uniform=no_jitter) == 3.0
    assert backoff.delay(0, 0.01, uniform=no_jitter) == pytest.approx(0.2)
    assert backoff.delay(0, 10.0, uniform=no_jitter) == 10.0
    assert backoff.delay(0, 30.0, uniform=no_jitter) is None  # not waited for


def test_no_retries() -> None:
    assert Backoff(max_retries=0).delay(0) is None
