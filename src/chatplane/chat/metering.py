"""Metering of one model call: timing, time to first token, cost, and its usage row."""

from __future__ import annotations

import time
from collections.abc import Callable

from opentelemetry.trace import Span

from chatplane.kit.clock import utcnow
from chatplane.kit.ids import cuid
from chatplane.llm.local import count_input_tokens, count_tokens
from chatplane.llm.pricing import PriceTable
from chatplane.llm.types import (
    CompletionParams,
    ProviderEvent,
    TextDelta,
    TokenUsage,
    ToolCallDelta,
    ToolCallStart,
)
from chatplane.observability import tracing
from chatplane.usage.types import UsageRow


def _ms(since: float) -> int:
    return round((time.perf_counter() - since) * 1000)


def delivered_usage(
    reported: TokenUsage, params: CompletionParams, delivered: list[ProviderEvent]
) -> TokenUsage:
    """Tokens of a stream cut short: what the provider reported so far, or, where it had not
    reported yet (Anthropic sends output tokens only at the end), the count of what was
    delivered by the local tokenizer's rule (exact for the local model, an estimate for
    others). Input tokens likewise fall back to counting the request."""
    output = 0
    for event in delivered:
        if isinstance(event, TextDelta):
            output += count_tokens(event.delta)
        elif isinstance(event, ToolCallStart):
            output += count_tokens(event.name)
        elif isinstance(event, ToolCallDelta):
            output += count_tokens(event.arguments)
    input_tokens = reported.input_tokens or count_input_tokens(params.messages, params.tools)
    return TokenUsage(
        input_tokens=input_tokens,
        output_tokens=max(reported.output_tokens, output),
        cache_read_tokens=reported.cache_read_tokens,
        cache_write_tokens=reported.cache_write_tokens,
    )


class Meter:
    """Watches one call from `started` (a perf_counter reading) and records it once."""

    __slots__ = (
        "_prices",
        "_recorded",
        "_row",
        "_sink",
        "_started",
        "cost",
        "finish_reason",
        "model",
        "ttft_ms",
        "usage",
    )

    def __init__(
        self,
        sink: Callable[[UsageRow], None],
        prices: PriceTable,
        *,
        started: float,
        tenant_id: str,
        project_id: str,
        session_id: str,
        model: str,
        provider: str,
    ) -> None:
        self._sink = sink
        self._prices = prices
        self._started = started
        self._recorded = False
        self._row: UsageRow = {
            "tenant_id": tenant_id,
            "project_id": project_id,
            "session_id": session_id,
            "model": model,
            "provider": provider,
        }
        self.model = model
        self.usage = TokenUsage()
        self.ttft_ms: int | None = None
        self.finish_reason = ""
        self.cost: float | None = None

    def elapsed_ms(self) -> int:
        return _ms(self._started)

    def first_output(self) -> None:
        """The first token (or tool call) reached the caller."""
        if self.ttft_ms is None:
            self.ttft_ms = _ms(self._started)

    def progress(self, usage: TokenUsage) -> None:
        """Tokens so far: what a call that ends early is billed for."""
        self.usage = usage

    def finished(self, finish_reason: str, usage: TokenUsage) -> float | None:
        """The call succeeded; returns its cost (None for a model without a price)."""
        self.usage = usage
        self.finish_reason = finish_reason
        self.cost = self._prices.cost(
            self.model,
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
        )
        return self.cost

    def end_span(
        self, span: Span, *, finish_reason: str | None, error: BaseException | None, status: str
    ) -> None:
        """End the call's tracing span with what the meter counted."""
        tracing.end_llm_span(
            span,
            finish_reason=finish_reason,
            input_tokens=self.usage.input_tokens,
            output_tokens=self.usage.output_tokens,
            cost=self.cost,
            error=error,
            status=status,
        )

    def record(self, status: str) -> None:
        """Hand the usage row to the sink: `ok`, `error` or `cancelled`. Once only."""
        row = self.take(status)
        if row is not None:
            self._sink(row)

    def take(self, status: str) -> UsageRow | None:
        """The usage row, once (None afterwards): for a caller that stores it itself and
        waits until it is durable."""
        if self._recorded:
            return None
        self._recorded = True
        usage = self.usage
        return {
            **self._row,
            "id": cuid(),
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "cost": self.cost,
            "latency_ms": self.elapsed_ms(),
            "ttft_ms": self.ttft_ms,
            "finish_reason": self.finish_reason,
            "status": status,
            "created_at": utcnow(),
        }
