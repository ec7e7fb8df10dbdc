"""Retry backoff: how long to wait before the next attempt, or whether to give up.

Exponential backoff with jitter (base, 2 x base, 4 x base, ... each +-`jitter`), bounded by
a number of retries. A server's retry-after hint is honoured when it is no longer than
`max_retry_after`; a longer one means giving up at once rather than holding the caller.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    max_retries: int = 2
    base_delay: float = 0.2  # seconds before the first retry (before jitter)
    max_retry_after: float = 10.0  # a longer retry-after is not waited for
    jitter: float = 0.2  # +-20% against retry storms

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        *,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> float | None:
        """Seconds to wait after failed attempt number `attempt` (0-based), or None to give up.

        `retry_after` is the server's hint in seconds, if any; `uniform` draws the jitter
        factor (injectable for tests).
        """
        if attempt >= self.max_retries:
            return None
        backoff = self.base_delay * (2.0**attempt) * uniform(1.0 - self.jitter, 1.0 + self.jitter)
        if retry_after is None:
            return backoff
        if retry_after > self.max_retry_after:
            return None
        return max(backoff, retry_after)
