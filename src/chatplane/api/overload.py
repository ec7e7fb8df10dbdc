"""Overload shedding: the per-process bound on calls in flight (CHATPLANE_MAX_INFLIGHT).

Beyond it a call is refused at once, before authentication and before any model call,
with 503 `Server overloaded` and Retry-After: a client retries a moment later (or on
another replica) instead of queueing behind work this process cannot finish in time.
The limiter itself is `chatplane.kit.admission.InflightLimiter`.
"""

from __future__ import annotations

from chatplane.errors import Unavailable
from chatplane.kit.admission import InflightLimiter

OVERLOADED = "Server overloaded"
RETRY_AFTER_SECONDS = 1


def overloaded() -> Unavailable:
    return Unavailable(OVERLOADED, reason="SERVER_OVERLOADED", retry_after=RETRY_AFTER_SECONDS)


def overload_limiter(limit: int) -> InflightLimiter:
    """The server's in-flight limit: `limit` calls at once, no queue."""
    return InflightLimiter(limit, refuse=overloaded)
