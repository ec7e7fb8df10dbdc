"""Whether the standard OTEL_* variables ask for tracing: one rule for chatplane's own spans
(observability/tracing.py) and the anthropic SDK's (llm/anthropic/provider.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

TRACING_VARIABLES = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


def disabled(env: Mapping[str, str]) -> bool:
    """OTEL_SDK_DISABLED=true: no tracing, whatever else is set."""
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def requested(env: Mapping[str, str], extra: Sequence[str] = ()) -> bool:
    """A tracing variable (or one of `extra`) is set; an OTEL_TRACES_EXPORTER of `none`
    and empty values do not count. `disabled` is the caller's to check first."""
    for name in (*TRACING_VARIABLES, *extra):
        value = env.get(name, "").strip().lower()
        if value and not (name == "OTEL_TRACES_EXPORTER" and value == "none"):
            return True
    return False
