"""The SDK's OpenTelemetry span per request is off unless OpenTelemetry is configured
(issue 15): nothing records it otherwise, and building it costs CPU on every call."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from chatplane.llm.anthropic import AnthropicProvider
from chatplane.llm.anthropic.provider import sdk_tracing


class _RealProvider(trace.TracerProvider):
    """Stands in for an SDK TracerProvider that start-up installed."""

    def get_tracer(self, *args: object, **kwargs: object) -> trace.Tracer:
        return trace.NoOpTracer()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, None),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, None),
        ({"ANTHROPIC_OPEN_TELEMETRY": "true"}, None),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_sdk_tracing_follows_the_standard_variables(
    environ: dict[str, str], expected: bool | None
) -> None:
    assert sdk_tracing(environ) is expected


def test_sdk_tracing_is_on_with_an_installed_tracer_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", _RealProvider)
    assert sdk_tracing({}) is None


async def test_the_provider_builds_no_span_without_opentelemetry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "ANTHROPIC_OPEN_TELEMETRY"):
        monkeypatch.delenv(name, raising=False)
    provider = AnthropicProvider("sk-ant-x", "http://127.0.0.1:9")
    try:
        assert provider._client._tracer is None  # the SDK skips start_api_call_span
    finally:
        await provider.aclose()
