"""Logging: one JSON object per line (python-json-logger), each carrying the id of the
request it belongs to.

The interceptor sets the request id (`bind_request_id`) when a call starts; every record
logged while that call runs, by any logger, gets it as `request_id`. Extra fields
(`log.info("...", extra={...})`) become top-level keys. `CHATPLANE_LOG_FORMAT=text`
gives the classic one-line text format instead (the request id still at the end).
With tracing on (observability/tracing.py), a record logged while a span is active also
carries `trace_id` and `span_id` (hex, as OTLP backends show them).
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from chatplane.observability import tracing

_request_id: ContextVar[str | None] = ContextVar("chatplane_request_id", default=None)

FORMATS = ("json", "text")
_JSON_FIELDS = "%(levelname)s %(name)s %(message)s"
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s [%(request_id)s]"


def bind_request_id(request_id: str | None) -> None:
    _request_id.set(request_id)


def request_id() -> str | None:
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (None outside a call) to every record, and the active span's
    `trace_id` / `span_id` when tracing is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        if tracing.enabled() and getattr(record, "trace_id", None) is None:
            ids = tracing.current_ids()
            if ids is not None:
                record.trace_id, record.span_id = ids
        return True


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        _JSON_FIELDS,
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",  # ISO 8601, UTC
    )


def configure(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    """Install the root handler: JSON lines (default) or text, on stderr."""
    if fmt not in FORMATS:
        raise ValueError(f"CHATPLANE_LOG_FORMAT must be one of {', '.join(FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(json_formatter() if fmt == "json" else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
