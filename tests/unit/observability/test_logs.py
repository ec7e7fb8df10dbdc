"""Log lines carry the active span's trace and span ids when tracing is on."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chatplane.observability import logs, tracing


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    logs.configure("INFO", "json", stream=stream)
    tracing.shutdown()
    yield stream
    tracing.shutdown()
    logs.bind_request_id(None)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_logged_in_a_span_has_its_ids(lines: io.StringIO) -> None:
    exporter = InMemorySpanExporter()
    tracing.setup({"OTEL_TRACES_EXPORTER": "console"}, exporter=exporter, install_global=False)
    logs.bind_request_id("req-1")
    span = tracing.start_llm_span("local", "m")
    with tracing.use(span):
        logging.getLogger("chatplane.any").info("inside")
    logging.getLogger("other.library").info("outside")
    tracing.end_llm_span(span)
    by_message = {line["message"]: line for line in records(lines)}
    inside, outside = by_message["inside"], by_message["outside"]
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert inside["request_id"] == "req-1"
    assert "trace_id" not in outside and outside["request_id"] == "req-1"


def test_no_trace_ids_when_tracing_is_off(lines: io.StringIO) -> None:
    span = tracing.start_llm_span("local", "m")
    with tracing.use(span):
        logging.getLogger("chatplane.any").info("inside")
    (line,) = records(lines)
    assert "trace_id" not in line and "span_id" not in line
