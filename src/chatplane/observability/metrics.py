"""Prometheus metrics (prometheus-client), all prefixed `chatplane_`.

Call sites use the small functions below, never the metric objects, so names and labels
stay in one place. In workers mode (`CHATPLANE_WORKERS` > 1) `chatplane run` points
`PROMETHEUS_MULTIPROC_DIR` at `<data dir>/prometheus` before it starts the workers, and
`exposition()` then merges every worker's files (prometheus-client's multiprocess
collector), so any worker answers `/metrics` for all of them.

Labels are bounded: RPC methods come from the contract, models are the price table's
(anything else is `other`), tool names are the deployed agents' own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Latency buckets (seconds): 1 ms to 2 min, for RPCs and model calls alike.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

RPC_REQUESTS = Counter(
    "chatplane_rpc_requests", "RPCs handled, by method and gRPC status code.", ["method", "code"]
)
RPC_DURATION = Histogram(
    "chatplane_rpc_duration_seconds",
    "RPC latency (streams: until the last message), by method.",
    ["method"],
    buckets=_BUCKETS,
)
RPC_IN_FLIGHT = Gauge(
    "chatplane_rpc_in_flight", "RPCs being handled now.", multiprocess_mode="livesum"
)
RPC_SHED = Counter(
    "chatplane_rpc_shed", "RPCs refused at once because the server was overloaded (503)."
)
RATE_LIMITED = Counter(
    "chatplane_rate_limit_rejections",
    "Calls refused by a rate limit (429), by the limit's reason.",
    ["reason"],
)
LLM_REQUESTS = Counter(
    "chatplane_llm_requests",
    "Model calls, by model, provider and outcome (ok, error, cancelled).",
    ["model", "provider", "outcome"],
)
LLM_TOKENS = Counter(
    "chatplane_llm_tokens",
    "Tokens of model calls, by model, provider and direction (input, output, cache_read, "
    "cache_write).",
    ["model", "provider", "direction"],
)
LLM_COST = Counter(
    "chatplane_llm_cost_usd", "Estimated cost of model calls in USD.", ["model", "provider"]
)
LLM_DURATION = Histogram(
    "chatplane_llm_request_duration_seconds",
    "Model call latency, by model and provider.",
    ["model", "provider"],
    buckets=_BUCKETS,
)
LLM_TTFT = Histogram(
    "chatplane_llm_time_to_first_token_seconds",
    "Time from the request to the model's first output, by model and provider.",
    ["model", "provider"],
    buckets=_BUCKETS,
)
USAGE_QUEUE = Gauge(
    "chatplane_usage_writer_queue_depth",
    "Usage records waiting for the usage writer.",
    multiprocess_mode="livesum",
)
USAGE_FLUSH = Histogram(
    "chatplane_usage_writer_flush_seconds",
    "Time one usage-writer flush (one batch insert) takes.",
    buckets=_BUCKETS,
)
AGENT_TURNS = Counter(
    "chatplane_agent_turns",
    "Agent turns, by the turn's action (continue, complete, escalate, handoff) and outcome.",
    ["action", "outcome"],
)
AGENT_TURN_DURATION = Histogram(
    "chatplane_agent_turn_duration_seconds",
    "Agent turn latency, by action.",
    ["action"],
    buckets=_BUCKETS,
)
TOOL_CALLS = Counter(
    "chatplane_agent_tool_calls", "Agent tool calls, by tool and outcome.", ["tool", "outcome"]
)
TOOL_DURATION = Histogram(
    "chatplane_agent_tool_call_duration_seconds",
    "Agent tool call latency, by tool.",
    ["tool"],
    buckets=_BUCKETS,
)


# --- call sites ----------------------------------------------------------------------

# Labelled children by (metric, label values): `labels()` takes a lock and checks its
# arguments on every call; the label values are bounded (above), so the memo is too.
_children: dict[tuple[object, tuple[str, ...]], Any] = {}


def _child(metric: Counter | Histogram, *values: str) -> Any:
    key = (metric, values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


def rpc_started() -> None:
    RPC_IN_FLIGHT.inc()


def rpc_finished(method: str, code: str, seconds: float) -> None:
    RPC_IN_FLIGHT.dec()
    _child(RPC_REQUESTS, method, code).inc()
    _child(RPC_DURATION, method).observe(seconds)


def rpc_shed() -> None:
    RPC_SHED.inc()


def rate_limited(reason: str) -> None:
    _child(RATE_LIMITED, reason or "RATE_LIMIT_EXCEEDED").inc()


def observe_llm_call(
    *,
    model: str,
    provider: str,
    outcome: str,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    cost: float | None = None,
    latency_seconds: float | None = None,
    ttft_seconds: float | None = None,
) -> None:
    """One finished model call (ok, error or cancelled)."""
    _child(LLM_REQUESTS, model, provider, outcome).inc()
    for direction, count in (
        ("input", input_tokens),
        ("output", output_tokens),
        ("cache_read", cache_read_tokens),
        ("cache_write", cache_write_tokens),
    ):
        if count:
            _child(LLM_TOKENS, model, provider, direction).inc(count)
    if cost:
        _child(LLM_COST, model, provider).inc(cost)
    if latency_seconds is not None:
        _child(LLM_DURATION, model, provider).observe(latency_seconds)
    if ttft_seconds is not None:
        _child(LLM_TTFT, model, provider).observe(ttft_seconds)


def observe_usage_row(row: dict[str, object], *, known_model: bool = True) -> None:
    """A usage record (chatplane.usage.types.UsageRow) as one model call."""

    def number(key: str) -> float:
        value = row.get(key)
        return float(value) if isinstance(value, int | float) else 0.0

    ttft = row.get("ttft_ms")
    observe_llm_call(
        model=str(row.get("model") or "") if known_model else "other",
        provider=str(row.get("provider") or ""),
        outcome=str(row.get("status") or "ok"),
        input_tokens=int(number("input_tokens")),
        output_tokens=int(number("output_tokens")),
        cache_read_tokens=int(number("cache_read_tokens")),
        cache_write_tokens=int(number("cache_write_tokens")),
        cost=number("cost"),
        latency_seconds=number("latency_ms") / 1000,
        ttft_seconds=ttft / 1000 if isinstance(ttft, int | float) else None,
    )


def usage_queue_depth(depth: int) -> None:
    USAGE_QUEUE.set(depth)


def usage_flushed(seconds: float) -> None:
    USAGE_FLUSH.observe(seconds)


def observe_turn(action: str, seconds: float, *, outcome: str = "ok") -> None:
    """One agent turn: its action (`continue`, `complete`, `escalate`, `handoff`; use
    `none` for a failed turn) and outcome (`ok`, `error`, `rejected`, ...)."""
    _child(AGENT_TURNS, action or "none", outcome).inc()
    _child(AGENT_TURN_DURATION, action or "none").observe(seconds)


def observe_tool(name: str, ok: bool, seconds: float) -> None:
    """One agent tool call: the tool's name, whether it succeeded, how long it took."""
    _child(TOOL_CALLS, name, "ok" if ok else "error").inc()
    _child(TOOL_DURATION, name).observe(seconds)


# --- exposition ----------------------------------------------------------------------


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def prepare_multiprocess(directory: Path) -> None:
    """Make `directory` the (empty) multiprocess directory of the processes started from
    now on (`chatplane run` with workers calls it before it spawns them)."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (in-flight, queue depth)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def exposition() -> bytes:
    """Every metric in Prometheus' text format: this process's, or in multiprocess mode
    every worker's."""
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
