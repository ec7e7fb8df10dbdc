"""OpenTelemetry tracing: off unless the standard OTEL_* variables ask for it.

Configured means the rule of the Anthropic SDK hook (llm/anthropic/provider.py
`sdk_tracing`): OTEL_TRACES_EXPORTER set to something other than `none`, or an OTLP
endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
OTEL_SDK_DISABLED=true turns it off whatever else is set. Off, `setup()` installs nothing
and every helper here returns the API's invalid span after one module-level check.

On, each server process (workers too: `setup()` runs in App.start) gets a TracerProvider
with a BatchSpanProcessor and the OTLP/HTTP exporter, both configured by the SDK's own
OTEL_* variables (endpoint, headers, sampler, batch sizes); `service.name` comes from
OTEL_SERVICE_NAME, `chatplane` by default. `shutdown()` flushes on server stop.

Spans made here: one per LLM call (GenAI semantic conventions plus chatplane's cost), one
per agent turn, and, rebuilt from the runtime's own trace events once a turn has run,
one per flow step and per tool call (the runtime knows nothing of OpenTelemetry).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

from chatplane.kit import otel_env

log = logging.getLogger("chatplane.tracing")

SERVICE_NAME = "chatplane"
_SCOPE = "chatplane"


class _State:
    """The process's tracing: `provider` None means off (the check every helper makes
    first)."""

    provider: TracerProvider | None = None
    tracer: trace.Tracer = trace.NoOpTracer()


_state = _State()
_OFF: AbstractContextManager[Span] = contextlib.nullcontext(INVALID_SPAN)


def configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the OTEL_* variables ask for tracing."""
    env = os.environ if environ is None else environ
    return not otel_env.disabled(env) and otel_env.requested(env)


def enabled() -> bool:
    return _state.provider is not None


def provider() -> TracerProvider | None:
    """The process's tracer provider while tracing is on."""
    return _state.provider


def _exporter(env: Mapping[str, str]) -> SpanExporter:
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",")]
    name = names[0] or "otlp"
    if name == "console":
        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER must be otlp, console or none, got {name!r}")
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol != "http/protobuf":
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r} is not supported: use http/protobuf"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    return OTLPSpanExporter()  # endpoint, headers, timeout: the OTEL_EXPORTER_OTLP_* variables


def _resource(env: Mapping[str, str]) -> Resource:
    attributes = env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    named = env.get("OTEL_SERVICE_NAME") or "service.name=" in attributes
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES itself.
    return Resource.create({} if named else {"service.name": SERVICE_NAME})


def setup(
    environ: Mapping[str, str] | None = None,
    *,
    exporter: SpanExporter | None = None,
    install_global: bool = True,
) -> bool:
    """Turn tracing on for this process when the variables ask for it (idempotent).

    `install_global` also makes the provider the API's global one, so that libraries
    tracing on their own (the Anthropic SDK) export through it; a process can do that
    once. `exporter` replaces the one the variables name (tests)."""
    env = os.environ if environ is None else environ
    if _state.provider is not None:
        return True
    if not configured(env):
        return False
    tracer_provider = TracerProvider(resource=_resource(env))
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter or _exporter(env)))
    if install_global:
        trace.set_tracer_provider(tracer_provider)
    _state.provider = tracer_provider
    _state.tracer = tracer_provider.get_tracer(_SCOPE)
    log.info("tracing on: spans exported per the OTEL_* variables")
    return True


def shutdown() -> None:
    """Export what is buffered and turn tracing off (blocking: run it off the loop)."""
    current, _state.provider, _state.tracer = _state.provider, None, trace.NoOpTracer()
    if current is not None:
        current.shutdown()


def current_ids() -> tuple[str, str] | None:
    """The active span's trace and span ids (hex), for log lines; None when off or idle."""
    if _state.provider is None:
        return None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


# ---- LLM calls ---------------------------------------------------------------------------


def start_llm_span(system: str, model: str, *, operation: str = "chat") -> Span:
    """A client span for one model call, not yet current (GenAI semantic conventions).

    Streams use it as is (a context attached inside an async generator could be detached
    in another task); a coroutine makes it current with `use(span)`."""
    if _state.provider is None:
        return INVALID_SPAN
    return _state.tracer.start_span(
        f"{operation} {model}",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": operation,
            "gen_ai.system": system,
            "gen_ai.provider.name": system,
            "gen_ai.request.model": model,
        },
    )


def use(span: Span) -> AbstractContextManager[Any]:
    """Make `span` current while the block runs (does not end it)."""
    if not span.is_recording():
        return _OFF
    # The caller records the outcome (end_llm_span): no second exception event here.
    return trace.use_span(
        span, end_on_exit=False, record_exception=False, set_status_on_exception=False
    )


def end_llm_span(
    span: Span,
    *,
    finish_reason: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cost: float | None = None,
    response_model: str | None = None,
    error: BaseException | None = None,
    status: str | None = None,
) -> None:
    """The call's outcome on its span, then end it."""
    if not span.is_recording():
        return
    if finish_reason:
        span.set_attribute("gen_ai.response.finish_reasons", [finish_reason])
    if input_tokens is not None:
        span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
    if output_tokens is not None:
        span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
    if cost is not None:
        span.set_attribute("chatplane.cost_usd", cost)
    if response_model:
        span.set_attribute("gen_ai.response.model", response_model)
    if status:
        span.set_attribute("chatplane.status", status)
    if error is not None:
        span.set_attribute("error.type", type(error).__name__)
        if isinstance(error, Exception):
            span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, str(error)[:200] or type(error).__name__))
    span.end()


# ---- agent turns -------------------------------------------------------------------------


def turn_span(project_id: str) -> AbstractContextManager[Span]:
    """The current span of one agent turn; `annotate` adds what is known later."""
    if _state.provider is None:
        return _OFF
    return _state.tracer.start_as_current_span(
        "agent_turn",
        kind=SpanKind.INTERNAL,
        attributes={"chatplane.project_id": project_id, "gen_ai.operation.name": "invoke_agent"},
    )


def annotate(**attributes: str | int | float | bool) -> None:
    """Attributes on the current span (`chatplane.` prefixed), when tracing is on."""
    if _state.provider is None:
        return
    span = trace.get_current_span()
    for key, value in attributes.items():
        span.set_attribute(f"chatplane.{key}", value)


class RuntimeEvent(Protocol):
    """A runtime trace event (chatplane.runtime.TraceEvent), as far as spans need it."""

    @property
    def type(self) -> str: ...
    @property
    def span_id(self) -> str: ...
    @property
    def parent_span_id(self) -> str | None: ...
    @property
    def started_ms(self) -> int: ...
    @property
    def duration_ms(self) -> int: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


def record_turn_events(events: Sequence[RuntimeEvent], started_ns: int, ended_ns: int) -> None:
    """Flow steps and tool calls of a finished turn as children of the current (turn)
    span, at the times the runtime measured: a step lasts until the next one starts."""
    if _state.provider is None:
        return
    parent = trace.get_current_span()
    if not parent.is_recording():
        return
    root = trace.set_span_in_context(parent)
    steps = [e for e in events if e.type == "state_change" and "step" in e.data]
    spans: dict[str, Span] = {}
    ends: list[int] = []
    for i, event in enumerate(steps):
        start = started_ns + event.started_ms * 1_000_000
        end = started_ns + steps[i + 1].started_ms * 1_000_000 if i + 1 < len(steps) else ended_ns
        spans[event.span_id] = _state.tracer.start_span(
            f"step {event.data['step']}",
            context=root,
            start_time=start,
            attributes={
                "chatplane.step": str(event.data["step"]),
                "chatplane.step.attempt": int(event.data.get("attempt") or 1),
            },
        )
        ends.append(max(start, end))
    calls = {e.span_id: e for e in events if e.type == "tool_call"}
    for event in events:
        if event.type != "tool_result":
            continue
        call = calls.get(event.parent_span_id or "")
        owner = spans.get(call.parent_span_id or "") if call is not None else None
        _tool_span(event, call, trace.set_span_in_context(owner) if owner else root, started_ns)
    for span, end in zip(spans.values(), ends, strict=True):
        span.end(end_time=end)


def _tool_span(
    result: RuntimeEvent, call: RuntimeEvent | None, context: Any, started_ns: int
) -> None:
    name = str(result.data.get("toolName", ""))
    ok = bool(result.data.get("success"))
    start = started_ns + result.started_ms * 1_000_000
    span = _state.tracer.start_span(
        f"execute_tool {name}",
        context=context,
        kind=SpanKind.INTERNAL,
        start_time=start,
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "chatplane.tool.ok": ok,
            "chatplane.tool.latency_ms": int(result.data.get("latencyMs") or 0),
            "chatplane.tool.mocked": bool(call is not None and call.data.get("mocked")),
        },
    )
    if not ok:
        span.set_attribute("error.type", str(result.data.get("errorType") or "tool_error"))
        span.set_status(Status(StatusCode.ERROR, str(result.data.get("error") or "")[:200]))
    span.end(end_time=start + result.duration_ms * 1_000_000)
