"""Usage domain types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# One usage_records row as column -> value (see storage.models.UsageRecord): a plain dict
# is cheap to build on the hot path and bulk-inserts without ORM objects.
UsageRow = dict[str, Any]


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Aggregates over usage records (one model, or all)."""

    model: str
    provider: str
    total_tokens: int
    total_cost: float
    request_count: int
    avg_latency: float


@dataclass(frozen=True, slots=True)
class UsageReport:
    summary: UsageTotals
    by_model: list[UsageTotals]
