"""The bounded execution queue of agent turns, per server process: overload sheds
(429 "Execution queue full") instead of piling up."""

from __future__ import annotations

from chatplane.errors import ResourceExhausted
from chatplane.kit.admission import InflightLimiter


def _full() -> ResourceExhausted:
    return ResourceExhausted("Execution queue full", reason="EXECUTION_QUEUE_FULL", retry_after=1)


def turn_queue(*, running: int, waiting: int) -> InflightLimiter:
    """At most `running` turns at once and `waiting` more queued; beyond that, refused."""
    return InflightLimiter(max(1, running), refuse=_full, queue=max(0, waiting))
