"""Tracing: off unless OTEL_* ask for it (then nothing is installed), and the spans the
helpers make when it is on (an in-memory exporter; the OTLP path is tests/e2e)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc._aio_server import OpenTelemetryAioServerInterceptor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from chatplane.api.server import _tracing_interceptors
from chatplane.observability import tracing
from chatplane.runtime.types import TraceEvent

ON = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


@pytest.fixture(autouse=True)
def _off_afterwards() -> Iterator[None]:
    tracing.shutdown()
    yield
    tracing.shutdown()


@pytest.fixture
def exported() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    assert tracing.setup(ON, exporter=exporter, install_global=False)
    return exporter


def finished(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    provider = tracing.provider()
    assert provider is not None
    provider.force_flush()
    return list(exporter.get_finished_spans())


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": " None "}, False),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({**ON, "OTEL_SDK_DISABLED": "true"}, False),
        ({**ON, "OTEL_SDK_DISABLED": "false"}, True),
    ],
)
def test_configured_follows_the_otel_variables(environ: dict[str, str], expected: bool) -> None:
    assert tracing.configured(environ) is expected


def test_off_installs_nothing() -> None:
    before = trace.get_tracer_provider()
    assert tracing.setup({"OTEL_TRACES_EXPORTER": "none"}) is False
    assert not tracing.enabled() and tracing.provider() is None
    assert trace.get_tracer_provider() is before  # the global provider is left alone
    assert _tracing_interceptors() == []  # the gRPC server gets no interceptor
    span = tracing.start_llm_span("anthropic", "m")
    assert span is trace.INVALID_SPAN and not span.is_recording()
    with tracing.use(span), tracing.turn_span("p") as turn:
        assert turn is trace.INVALID_SPAN
        tracing.annotate(session_id="s")
        assert tracing.current_ids() is None
    tracing.end_llm_span(span, finish_reason="end_turn", input_tokens=1)


def test_on_installs_the_grpc_interceptor(exported: InMemorySpanExporter) -> None:
    assert tracing.enabled()
    assert [type(i) for i in _tracing_interceptors()] == [OpenTelemetryAioServerInterceptor]
    assert tracing.setup(ON) is True  # idempotent: the same provider stays
    tracing.shutdown()
    assert _tracing_interceptors() == [] and not tracing.enabled()


def test_llm_span_has_the_genai_attributes(exported: InMemorySpanExporter) -> None:
    span = tracing.start_llm_span("anthropic", "claude-haiku-4-5")
    with tracing.use(span):
        assert trace.get_current_span() is span
        ids = tracing.current_ids()
    tracing.end_llm_span(
        span, finish_reason="end_turn", input_tokens=12, output_tokens=5, cost=0.25, status="ok"
    )
    (got,) = finished(exported)
    assert ids == (format(got.context.trace_id, "032x"), format(got.context.span_id, "016x"))
    assert (got.name, got.kind) == ("chat claude-haiku-4-5", SpanKind.CLIENT)
    assert dict(got.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "anthropic",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-haiku-4-5",
        "gen_ai.response.finish_reasons": ("end_turn",),
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 5,
        "chatplane.cost_usd": 0.25,
        "chatplane.status": "ok",
    }
    assert got.status.status_code == StatusCode.UNSET


def test_a_failed_llm_call_is_an_error_span(exported: InMemorySpanExporter) -> None:
    span = tracing.start_llm_span("local", "echo")
    with pytest.raises(TimeoutError) as raised, tracing.use(span):
        raise TimeoutError("upstream slow")
    tracing.end_llm_span(span, error=raised.value, status="error")
    (got,) = finished(exported)
    assert got.status.status_code == StatusCode.ERROR
    assert (got.attributes or {})["error.type"] == "TimeoutError"
    assert [e.name for e in got.events] == ["exception"]  # once, not again by use()


def _event(
    type: str, span: str, parent: str | None, start: int, duration: int, **data: object
) -> TraceEvent:
    return TraceEvent(type, span, parent, start, duration, dict(data))


def test_turn_events_become_step_and_tool_spans(exported: InMemorySpanExporter) -> None:
    base = 1_700_000_000_000_000_000
    events = [
        _event("state_change", "s1", "root", 0, 0, step="ask_email", attempt=1),
        _event("llm_call", "l1", "s1", 1, 5, model="m"),
        _event("state_change", "s2", "root", 10, 0, step="send_code", attempt=2),
        _event("tool_call", "t1", "s2", 12, 0, toolName="send", mocked=True),
        _event("tool_result", "r1", "t1", 12, 7, toolName="send", success=True, latencyMs=7),
        _event("tool_call", "t2", "s2", 20, 0, toolName="check", mocked=False),
        _event(
            "tool_result",
            "r2",
            "t2",
            20,
            3,
            toolName="check",
            success=False,
            latencyMs=3,
            error="boom",
            errorType="tool_error",
        ),
    ]
    with tracing.turn_span("proj") as turn:
        tracing.annotate(session_id="sess_1", agent="Reset")
        tracing.record_turn_events(events, base, base + 30_000_000)
    spans = {s.name: s for s in finished(exported)}
    assert set(spans) == {
        "agent_turn",
        "step ask_email",
        "step send_code",
        "execute_tool send",
        "execute_tool check",
    }
    root = spans["agent_turn"]
    assert root.context.span_id == turn.get_span_context().span_id
    assert dict(root.attributes or {}) == {
        "chatplane.project_id": "proj",
        "gen_ai.operation.name": "invoke_agent",
        "chatplane.session_id": "sess_1",
        "chatplane.agent": "Reset",
    }
    first, second = spans["step ask_email"], spans["step send_code"]
    for step in (first, second):
        assert step.parent is not None and step.parent.span_id == root.context.span_id
    # A step lasts until the next one starts; the last one until the turn ends.
    assert (first.start_time, first.end_time) == (base, base + 10_000_000)
    assert (second.start_time, second.end_time) == (base + 10_000_000, base + 30_000_000)
    assert (second.attributes or {})["chatplane.step.attempt"] == 2
    ok, failed = spans["execute_tool send"], spans["execute_tool check"]
    for tool in (ok, failed):
        assert tool.parent is not None and tool.parent.span_id == second.context.span_id
    assert (ok.start_time, ok.end_time) == (base + 12_000_000, base + 19_000_000)
    assert dict(ok.attributes or {}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "send",
        "chatplane.tool.ok": True,
        "chatplane.tool.latency_ms": 7,
        "chatplane.tool.mocked": True,
    }
    assert ok.status.status_code == StatusCode.UNSET
    assert failed.status.status_code == StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "tool_error"


def test_turn_events_need_a_turn_span(exported: InMemorySpanExporter) -> None:
    tracing.record_turn_events([_event("state_change", "s", None, 0, 0, step="a")], 0, 1)
    assert finished(exported) == []


def test_exporter_and_resource_follow_the_variables() -> None:
    assert isinstance(tracing._exporter({}), OTLPSpanExporter)
    assert isinstance(tracing._exporter({"OTEL_TRACES_EXPORTER": "console"}), ConsoleSpanExporter)
    with pytest.raises(ValueError, match="http/protobuf"):
        tracing._exporter({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        tracing._exporter({"OTEL_TRACES_EXPORTER": "zipkin"})
    assert tracing._resource({}).attributes["service.name"] == "chatplane"


def test_service_name_comes_from_otel_service_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "edge-7")
    assert tracing._resource({"OTEL_SERVICE_NAME": "edge-7"}).attributes["service.name"] == "edge-7"
