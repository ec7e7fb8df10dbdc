"""The configuration reference (docs/configuration.md): its groups, the variables read
outside `Settings` (`OTHER_VARIABLES`) and the Markdown rendering.

A leaf module: `chatplane.config` declares each setting with a group from here and hands
its rows to `markdown`; `python -m chatplane.config` prints the page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic.fields import FieldInfo

LISTENERS = "Listeners and processes"
STORAGE = "Storage"
SECURITY = "Keys and secrets"
LIMITS = "Limits"
AGENTS = "Agents and sessions"
ANALYTICS = "Analytics"
MODELS = "Models"
OBSERVABILITY = "Logs, metrics and tracing"
CLIENT = "Command-line client (`chatplane agents`, `deploy`, `test run`)"
DEVELOPMENT = "Development"
GROUPS = (
    LISTENERS,
    STORAGE,
    SECURITY,
    LIMITS,
    AGENTS,
    ANALYTICS,
    MODELS,
    OBSERVABILITY,
    CLIENT,
    DEVELOPMENT,
)


@dataclass(frozen=True)
class Variable:
    """One environment variable of the reference."""

    name: str
    default: str  # as documented (Markdown)
    meaning: str
    group: str


_OTEL_ON = (
    "set, each server process exports spans (LLM calls, agent turns, flow steps, tool "
    "calls; observability/tracing.py) and keeps the `anthropic` SDK's request spans on"
)

OTHER_VARIABLES: tuple[Variable, ...] = (
    Variable(
        "OTEL_SDK_DISABLED",
        "—",
        "OpenTelemetry's switch: `true` turns tracing (and the SDK's request spans) off "
        "whatever else is set",
        OBSERVABILITY,
    ),
    Variable(
        "OTEL_TRACES_EXPORTER",
        "— (`otlp` once tracing is on)",
        f"`otlp`, `console` or `none` (`none`: counts as unset); {_OTEL_ON}",
        OBSERVABILITY,
    ),
    Variable(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "—",
        f"Standard OpenTelemetry variable (OTLP over HTTP); {_OTEL_ON}",
        OBSERVABILITY,
    ),
    Variable(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "—",
        f"Standard OpenTelemetry variable, for traces only; {_OTEL_ON}",
        OBSERVABILITY,
    ),
    Variable(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "`http/protobuf`",
        "OTLP protocol; only `http/protobuf` is supported (anything else stops the start)",
        OBSERVABILITY,
    ),
    Variable(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "—",
        "The same, for traces only (wins over `OTEL_EXPORTER_OTLP_PROTOCOL`)",
        OBSERVABILITY,
    ),
    Variable(
        "OTEL_SERVICE_NAME",
        "`chatplane`",
        "The spans' `service.name` resource attribute",
        OBSERVABILITY,
    ),
    Variable(
        "OTEL_RESOURCE_ATTRIBUTES",
        "—",
        "Standard OpenTelemetry resource attributes (`key=value,...`) added to every span",
        OBSERVABILITY,
    ),
    Variable(
        "OTEL_PYTHON_TRACER_PROVIDER",
        "—",
        "Standard OpenTelemetry variable; set, the `anthropic` SDK's request spans stay on",
        OBSERVABILITY,
    ),
    Variable(
        "ANTHROPIC_OPEN_TELEMETRY",
        "—",
        "The `anthropic` SDK's own tracing switch (`false`: off); set, the SDK's "
        "`ANTHROPIC_OPEN_TELEMETRY_*` variables apply",
        OBSERVABILITY,
    ),
    Variable(
        "PROMETHEUS_MULTIPROC_DIR",
        "`<data dir>/prometheus` with workers",
        "prometheus-client's multiprocess directory; `chatplane run` with `CHATPLANE_WORKERS` "
        "> 1 sets (and empties) it unless given",
        OBSERVABILITY,
    ),
    Variable(
        "CHATPLANE_URL",
        "`http://127.0.0.1:8080`",
        "REST base URL the client commands call (or `--url`)",
        CLIENT,
    ),
    Variable("CHATPLANE_API_KEY", "—", "API key they send (or `--key`)", CLIENT),
    Variable(
        "CHATPLANE_DESCRIPTOR",
        "packaged (`gen/descriptor.binpb` in a checkout)",
        "Descriptor set Envoy's gRPC-JSON transcoder loads",
        DEVELOPMENT,
    ),
    Variable(
        "CHATPLANE_ENVOY_DIR",
        "packaged (`envoy/` in a checkout)",
        "Directory holding Envoy's `envoy.yaml.tmpl` and `status.lua`",
        DEVELOPMENT,
    ),
)
"""Variables read outside `Settings`, each where it is used: the CLI's REST client
(cli_agents.py, cli_testing.py), the gateway (config.descriptor_path, gateway.py), the
metrics (observability/metrics.py), tracing (observability/tracing.py) and the SDK's
tracing switch (llm/anthropic/provider.py). The other standard OTEL_* variables (headers,
sampler, batch sizes) go to the OpenTelemetry SDK as they are.
The server's child processes (workers.py) get CHATPLANE_* variables written for them."""

_HEADER = """\
# Configuration reference

<!-- Generated from src/chatplane/config/ by `python -m chatplane.config >
docs/configuration.md`: edit the field declarations there (variables read elsewhere:
src/chatplane/config/docs.py), not this file
(tests/unit/test_config_reference.py fails when the two differ). -->

Environment variables, read once at start-up by `chatplane run` and `chatplane serve` and
by the commands that work on the database (`keys`, `tenants`, `clients`, `migrate`). An
empty value counts as unset. Everything listens on 127.0.0.1 unless `CHATPLANE_HOST` says
otherwise.

The settings are a `pydantic-settings` model (`chatplane.config.Settings.from_env`): each
field declares its variable, type, default and meaning, and this page is generated from
those declarations. A value that does not parse stops the start with an error naming the
variable (e.g. `CHATPLANE_HTTP_PORT must be an integer, got 'eighty'`).
"""


def shown(value: object) -> str:
    """A default as the reference shows it."""
    if value is None or value in ("", ()):
        return "—"
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def ordered(settings: Iterable[Variable]) -> list[Variable]:
    """The settings' rows and `OTHER_VARIABLES`, grouped as the reference shows them."""
    return sorted([*settings, *OTHER_VARIABLES], key=lambda v: GROUPS.index(v.group))


def markdown(variables: Iterable[Variable]) -> str:
    """docs/configuration.md from `ordered(...)` rows."""
    lines = [_HEADER.rstrip("\n")]
    group = ""
    for var in variables:
        if var.group != group:
            group = var.group
            lines += ["", f"## {group}", "", "| Variable | Default | Meaning |", "|---|---|---|"]
        cells = (f"`{var.name}`", var.default, var.meaning)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def rows(fields: Mapping[str, FieldInfo]) -> list[Variable]:
    """The reference's rows of `Settings.model_fields` (declared by config._setting)."""
    found = []
    for name, field in fields.items():
        extra = field.json_schema_extra
        if not isinstance(field.validation_alias, str) or not isinstance(extra, dict):
            raise TypeError(f"Settings.{name} declares no variable: use _setting(...)")
        default = str(extra["shown"]) or shown(field.default)
        found.append(
            Variable(field.validation_alias, default, field.description or "", str(extra["group"]))
        )
    return found
