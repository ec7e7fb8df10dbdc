"""The meter: one usage row per call, with timing, TTFT and cost."""

from __future__ import annotations

import time

from chatplane.chat.metering import Meter
from chatplane.llm.pricing import ModelPrice, PriceTable
from chatplane.llm.types import TokenUsage
from chatplane.usage.types import UsageRow

PRICES = PriceTable({"m": ModelPrice(input=3, output=15, cache_read=0.3, cache_write=3.75)})


def meter(rows: list[UsageRow], model: str = "m") -> Meter:
    return Meter(
        rows.append,
        PRICES,
        started=time.perf_counter(),
        tenant_id="t",
        project_id="p",
        session_id="s",
        model=model,
        provider="anthropic",
    )


def test_successful_call_is_priced_and_recorded_once() -> None:
    rows: list[UsageRow] = []
    m = meter(rows)
    m.first_output()
    first = m.ttft_ms
    m.first_output()  # only the first counts
    assert m.ttft_ms == first
    cost = m.finished("end_turn", TokenUsage(1_000_000, 100_000, 10, 20))
    assert cost == round(3 + 1.5 + 10 * 0.3 / 1e6 + 20 * 3.75 / 1e6, 8)
    m.record("ok")
    m.record("error")  # ignored: a call is recorded once
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "ok" and row["finish_reason"] == "end_turn"
    assert (row["input_tokens"], row["output_tokens"]) == (1_000_000, 100_000)
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (10, 20)
    assert row["cost"] == cost and row["ttft_ms"] == first
    assert (row["tenant_id"], row["project_id"], row["session_id"]) == ("t", "p", "s")
    assert row["latency_ms"] >= 0 and row["id"] and row["created_at"]


def test_a_call_cut_short_is_billed_for_the_tokens_so_far() -> None:
    rows: list[UsageRow] = []
    m = meter(rows)
    m.progress(TokenUsage(7, 3))
    m.record("cancelled")
    assert rows[0]["status"] == "cancelled"
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (7, 3)
    assert rows[0]["cost"] is None and rows[0]["ttft_ms"] is None


def test_unknown_model_has_no_cost() -> None:
    rows: list[UsageRow] = []
    m = meter(rows, model="unpriced")
    assert m.finished("end_turn", TokenUsage(5, 5)) is None
