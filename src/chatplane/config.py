"""Configuration from environment variables.

Each `Settings` field carries its variable's name and meaning as field metadata, and
`OTHER_VARIABLES` lists the few read elsewhere: together they are the one table that
`python -m chatplane.config` prints as docs/configuration.md (a unit test keeps the two in
step and fails when the source reads a variable the table does not list)."""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


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

INFLIGHT_PER_CORE = 96


def _setting(
    default: Any, env: str, meaning: str, *, shown: str = "", group: str = LISTENERS
) -> Any:
    """A Settings field with its variable: `env` is read by `from_env`, `meaning` is the
    reference's one line, `shown` the default as documented when the field's own default
    does not say it (computed defaults, other units)."""
    return field(
        default=default, metadata={"env": env, "meaning": meaning, "shown": shown, "group": group}
    )


@dataclass(frozen=True)
class Settings:
    """Everything the server reads from its environment, read once at start-up."""

    # Listeners and processes
    http_port: int = _setting(
        8080, "CHATPLANE_HTTP_PORT", "Envoy's REST listener (0: pick a free port)"
    )
    grpc_port: int = _setting(
        50051,
        "CHATPLANE_GRPC_PORT",
        "The gRPC server; with workers, worker *i* listens on this port + *i* (0: pick free ports)",
    )
    host: str = _setting(
        "127.0.0.1",
        "CHATPLANE_HOST",
        "Address Envoy and the gRPC server bind to (`0.0.0.0` in a container)",
    )
    data_dir: Path = _setting(  # noqa: RUF009 (returns dataclasses.field)
        Path("var"),
        "CHATPLANE_DATA_DIR",
        "SQLite database, server key file, attachments, Envoy's rendered config",
        shown="`./var` (relative to the working directory)",
        group=STORAGE,
    )
    database_url: str = _setting(
        "",
        "CHATPLANE_DATABASE_URL",
        "e.g. `postgresql://user:pass@host:5432/db` (asyncpg) or `sqlite:///path.db`",
        shown="SQLite in the data dir",
        group=STORAGE,
    )
    bootstrap_api_key: str | None = _setting(
        None,
        "CHATPLANE_BOOTSTRAP_API_KEY",
        "Becomes the admin key of the default tenant on the first start (else one is printed)",
        group=SECURITY,
    )
    secret_key: str | None = _setting(
        None,
        "CHATPLANE_SECRET_KEY",
        "Encrypts secrets at rest (tenant Anthropic keys, JWT client secrets)",
        shown="key file in the data dir",
        group=SECURITY,
    )
    redis_url: str | None = _setting(
        None,
        "CHATPLANE_REDIS_URL",
        "Share rate limits between replicas through Redis (e.g. `redis://host:6379/0`)",
        group=LIMITS,
    )
    rate_limit_per_minute: int = _setting(
        600,
        "CHATPLANE_RATE_LIMIT_PER_MINUTE",
        "Per-tenant calls in any rolling 60 s (0: unlimited)",
        group=LIMITS,
    )
    rate_limit_per_hour: int = _setting(
        20_000,
        "CHATPLANE_RATE_LIMIT_PER_HOUR",
        "Per-tenant calls in any rolling hour (0: unlimited)",
        group=LIMITS,
    )
    session_rate_limit_per_minute: int = _setting(
        60,
        "CHATPLANE_SESSION_RATE_LIMIT_PER_MINUTE",
        "Chat calls per `sessionId` in any rolling minute (0: unlimited)",
        group=LIMITS,
    )
    shutdown_grace_seconds: float = _setting(
        10.0,
        "CHATPLANE_SHUTDOWN_GRACE_SECONDS",
        "How long in-flight calls may finish after SIGTERM; streams still running then end "
        'with an `error` event "server shutting down"',
    )
    workers: int = _setting(
        1,
        "CHATPLANE_WORKERS",
        "`chatplane run`: server processes behind Envoy (one core each)",
    )
    anthropic_api_key: str | None = _setting(
        None,
        "ANTHROPIC_API_KEY",
        "Server-wide Anthropic credentials (tenants may set their own; none: the local model)",
        group=MODELS,
    )
    anthropic_base_url: str | None = _setting(
        None,
        "ANTHROPIC_BASE_URL",
        "Where the `anthropic` SDK sends requests",
        shown="Anthropic's",
        group=MODELS,
    )
    prices_file: Path | None = _setting(  # noqa: RUF009 (returns dataclasses.field)
        None,
        "CHATPLANE_PRICES_FILE",
        "JSON file overriding or extending model prices",
        shown="packaged prices",
        group=MODELS,
    )
    log_level: str = _setting("INFO", "CHATPLANE_LOG_LEVEL", "Logging level", group=OBSERVABILITY)
    max_inflight: int = _setting(
        0,
        "CHATPLANE_MAX_INFLIGHT",
        'Calls in flight per server process; beyond, 503 "Server overloaded" + Retry-After at once',
        shown=f"{INFLIGHT_PER_CORE} per core (max 2 cores)",
        group=LIMITS,
    )
    jwt_max_lifetime_seconds: int = _setting(
        86_400,
        "CHATPLANE_JWT_MAX_LIFETIME_SECONDS",
        "Longest JWT lifetime accepted (`exp` - `iat`, or `exp` - now); `exp` is required",
        group=SECURITY,
    )
    local_token_delay: float = _setting(
        0.0,
        "CHATPLANE_LOCAL_TOKEN_DELAY_MS",
        "Milliseconds between the local model's tokens (demos, shutdown tests)",
        shown="`0`",
        group=MODELS,
    )
    max_active_sessions: int = _setting(
        1000,
        "CHATPLANE_MAX_ACTIVE_SESSIONS",
        "Active agent sessions per tenant (0: unlimited)",
        group=AGENTS,
    )
    max_concurrent_turns: int = _setting(
        64,
        "CHATPLANE_MAX_CONCURRENT_TURNS",
        "Agent turns running at once per server process",
        group=AGENTS,
    )
    turn_queue: int = _setting(
        256,
        "CHATPLANE_TURN_QUEUE",
        "Agent turns waiting beyond those; more is 429 `Execution queue full`",
        group=AGENTS,
    )
    tool_allowed_hosts: tuple[str, ...] = _setting(
        (),
        "CHATPLANE_TOOL_ALLOWED_HOSTS",
        "Hosts (`host` or `host:port`, comma-separated) http tools may reach despite the "
        "private-address rule",
        group=AGENTS,
    )
    session_idle_minutes: float = _setting(
        30.0,
        "CHATPLANE_SESSION_IDLE_MINUTES",
        "Active sessions without activity this long end (outcome `dropOff`; 0: never)",
        group=AGENTS,
    )
    attachment_max_bytes: int = _setting(
        20_000_000,
        "CHATPLANE_ATTACHMENT_MAX_BYTES",
        "Largest session attachment upload (413 above; the gateway route takes up to 64 MiB)",
        group=LIMITS,
    )
    upload_max_bytes: int = _setting(
        10_000_000,
        "CHATPLANE_UPLOAD_MAX_BYTES",
        "Largest `/api/public/uploadfile` file (413 above; keep it at most the attachment "
        "limit, which grpc's receive limit follows)",
        group=LIMITS,
    )
    job_concurrency: int = _setting(
        2,
        "CHATPLANE_JOB_CONCURRENCY",
        "Durable analytics jobs (billing summary, containment report) running at once per process",
        group=ANALYTICS,
    )
    xo_rate_limit_per_minute: int = _setting(
        60,
        "CHATPLANE_XO_RATE_LIMIT_PER_MINUTE",
        "The vendor's per-bot limit on the XO analytics routes, per minute",
        group=ANALYTICS,
    )
    xo_rate_limit_per_hour: int = _setting(
        1800,
        "CHATPLANE_XO_RATE_LIMIT_PER_HOUR",
        "The same, per hour",
        group=ANALYTICS,
    )
    llm_payloads: bool = _setting(
        True,
        "CHATPLANE_LLM_PAYLOADS",
        "Keep model call payloads for the LLM usage logs (`off`, `0` or `false`: keep none)",
        shown="`on`",
        group=ANALYTICS,
    )
    llm_payload_max_bytes: int = _setting(
        32_768,
        "CHATPLANE_LLM_PAYLOAD_MAX_BYTES",
        "Each kept payload is cut to this many bytes",
        group=ANALYTICS,
    )
    log_format: str = _setting(
        "json",
        "CHATPLANE_LOG_FORMAT",
        "`json`: one JSON object per line with `request_id`; `text`: classic text lines",
        group=OBSERVABILITY,
    )
    metrics_token: str | None = _setting(
        None,
        "CHATPLANE_METRICS_TOKEN",
        "Lets non-loopback clients read `GET /metrics` with `Authorization: Bearer <token>` "
        "(unset: loopback only)",
        group=OBSERVABILITY,
    )
    # The event loop of `chatplane serve`/`run`: `uvloop` (the default when importable)
    # or `asyncio` (the standard library's). Empty: uvloop when importable.
    event_loop: str = _setting(
        "",
        "CHATPLANE_EVENT_LOOP",
        "`chatplane serve`/`run` (and each worker): `uvloop` (faster; fails at start if not "
        "installed) or `asyncio` (the standard library's loop)",
        shown="`uvloop` when installed",
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        data_dir = Path(env.get("CHATPLANE_DATA_DIR") or "var")
        database_url = env.get("CHATPLANE_DATABASE_URL") or ""
        if not database_url:
            database_url = f"sqlite+aiosqlite:///{(data_dir / 'chatplane.db').resolve()}"
        prices = env.get("CHATPLANE_PRICES_FILE")
        return cls(
            http_port=_int(env, "CHATPLANE_HTTP_PORT", 8080),
            grpc_port=_int(env, "CHATPLANE_GRPC_PORT", 50051),
            host=env.get("CHATPLANE_HOST") or "127.0.0.1",
            data_dir=data_dir,
            database_url=normalize_database_url(database_url),
            bootstrap_api_key=env.get("CHATPLANE_BOOTSTRAP_API_KEY") or None,
            secret_key=env.get("CHATPLANE_SECRET_KEY") or None,
            redis_url=env.get("CHATPLANE_REDIS_URL") or None,
            rate_limit_per_minute=_int(env, "CHATPLANE_RATE_LIMIT_PER_MINUTE", 600),
            rate_limit_per_hour=_int(env, "CHATPLANE_RATE_LIMIT_PER_HOUR", 20_000),
            session_rate_limit_per_minute=_int(env, "CHATPLANE_SESSION_RATE_LIMIT_PER_MINUTE", 60),
            workers=max(1, _int(env, "CHATPLANE_WORKERS", 1)),
            shutdown_grace_seconds=float(env.get("CHATPLANE_SHUTDOWN_GRACE_SECONDS") or 10.0),
            anthropic_api_key=env.get("ANTHROPIC_API_KEY") or None,
            anthropic_base_url=env.get("ANTHROPIC_BASE_URL") or None,
            prices_file=Path(prices) if prices else None,
            log_level=env.get("CHATPLANE_LOG_LEVEL") or "INFO",
            max_inflight=max(0, _int(env, "CHATPLANE_MAX_INFLIGHT", 0)),
            jwt_max_lifetime_seconds=_int(env, "CHATPLANE_JWT_MAX_LIFETIME_SECONDS", 86_400),
            local_token_delay=_int(env, "CHATPLANE_LOCAL_TOKEN_DELAY_MS", 0) / 1000,
            max_active_sessions=_int(env, "CHATPLANE_MAX_ACTIVE_SESSIONS", 1000),
            max_concurrent_turns=_int(env, "CHATPLANE_MAX_CONCURRENT_TURNS", 64),
            turn_queue=_int(env, "CHATPLANE_TURN_QUEUE", 256),
            tool_allowed_hosts=tuple(
                h.strip()
                for h in env.get("CHATPLANE_TOOL_ALLOWED_HOSTS", "").split(",")
                if h.strip()
            ),
            session_idle_minutes=float(env.get("CHATPLANE_SESSION_IDLE_MINUTES") or 30.0),
            attachment_max_bytes=_int(env, "CHATPLANE_ATTACHMENT_MAX_BYTES", 20_000_000),
            upload_max_bytes=_int(env, "CHATPLANE_UPLOAD_MAX_BYTES", 10_000_000),
            job_concurrency=max(1, _int(env, "CHATPLANE_JOB_CONCURRENCY", 2)),
            xo_rate_limit_per_minute=_int(env, "CHATPLANE_XO_RATE_LIMIT_PER_MINUTE", 60),
            xo_rate_limit_per_hour=_int(env, "CHATPLANE_XO_RATE_LIMIT_PER_HOUR", 1800),
            llm_payloads=(env.get("CHATPLANE_LLM_PAYLOADS") or "on").lower()
            not in ("0", "off", "false"),
            llm_payload_max_bytes=_int(env, "CHATPLANE_LLM_PAYLOAD_MAX_BYTES", 32_768),
            log_format=(env.get("CHATPLANE_LOG_FORMAT") or "json").strip().lower(),
            metrics_token=env.get("CHATPLANE_METRICS_TOKEN") or None,
            event_loop=(env.get("CHATPLANE_EVENT_LOOP") or "").strip().lower(),
        )


def normalize_database_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite://` URLs and pick the async drivers."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


def default_max_inflight() -> int:
    """Calls in flight per server process when CHATPLANE_MAX_INFLIGHT is unset: what one
    process keeps answering promptly (docs/performance.md), a little more where more cores
    share the Envoy and database work that runs outside the process."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return INFLIGHT_PER_CORE * min(max(cores or 1, 1), 2)


REPO_ROOT = Path(__file__).resolve().parents[2]

GATEWAY_FILES = "gateway_files"
"""Where an installed wheel keeps Envoy's files (package data, `chatplane/gateway_files/`;
pyproject.toml force-includes them from `gen/` and `envoy/`)."""


def gateway_file(name: str, source: Path) -> Path:
    """A file Envoy needs: `source` (the repository's own file) in a checkout or an
    editable install, else the packaged copy of an installed wheel. The repository's file
    wins: an editable install also holds copies, made at install time, which go stale
    as soon as `make gen` or an edit changes the source."""
    if source.is_file():
        return source
    packaged = resources.files("chatplane") / GATEWAY_FILES / name
    if packaged.is_file():
        return Path(str(packaged))
    return source


def descriptor_path() -> Path:
    """The descriptor set `make gen` builds, which Envoy's transcoder loads."""
    override = os.environ.get("CHATPLANE_DESCRIPTOR")
    if override:
        return Path(override)
    return gateway_file("descriptor.binpb", REPO_ROOT / "gen" / "descriptor.binpb")


# --- the configuration reference (docs/configuration.md) ------------------------------


@dataclass(frozen=True)
class Variable:
    """One environment variable of the reference."""

    name: str
    default: str  # as documented (Markdown)
    meaning: str
    group: str


_OTEL_NOTE = (
    "chatplane exports no spans of its own yet; set, it keeps the `anthropic` SDK's request "
    "spans on (unset, they are turned off)"
)

OTHER_VARIABLES: tuple[Variable, ...] = (
    Variable(
        "OTEL_SDK_DISABLED",
        "—",
        "OpenTelemetry's switch: `true` turns the `anthropic` SDK's request spans off",
        OBSERVABILITY,
    ),
    Variable(
        "OTEL_TRACES_EXPORTER",
        "—",
        f"Standard OpenTelemetry variable (`none`: counts as unset); {_OTEL_NOTE}",
        OBSERVABILITY,
    ),
    Variable(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "—",
        f"Standard OpenTelemetry variable; {_OTEL_NOTE}",
        OBSERVABILITY,
    ),
    Variable(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "—",
        f"Standard OpenTelemetry variable; {_OTEL_NOTE}",
        OBSERVABILITY,
    ),
    Variable(
        "OTEL_PYTHON_TRACER_PROVIDER",
        "—",
        f"Standard OpenTelemetry variable; {_OTEL_NOTE}",
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
"""Variables read outside `Settings.from_env`: by the CLI's REST client, the gateway and
the metrics."""

_HEADER = """\
# Configuration reference

<!-- Generated from src/chatplane/config.py by `python -m chatplane.config >
docs/configuration.md`: edit the field metadata there, not this file
(tests/unit/test_config_reference.py fails when the two differ). -->

Environment variables, read once at start-up by `chatplane run` and `chatplane serve` and
by the commands that work on the database (`keys`, `tenants`, `clients`, `migrate`). An
empty value counts as unset. Everything listens on 127.0.0.1 unless `CHATPLANE_HOST` says
otherwise.

The settings are a plain dataclass parsed by hand (`chatplane.config.Settings.from_env`),
each field declaring its variable and meaning; this page is generated from those
declarations. Moving to `pydantic-settings` (issue 14) is postponed: it changes how every
variable is parsed and validated, too late in this cycle.
"""


def _shown(value: object) -> str:
    if value is None or value in ("", ()):
        return "—"
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def reference() -> list[Variable]:
    """Every variable chatplane reads, grouped as the reference shows them."""
    found: list[Variable] = []
    for f in fields(Settings):
        if "env" not in f.metadata:
            raise TypeError(f"Settings.{f.name} declares no variable: use _setting(...)")
        meta = f.metadata
        default = meta["shown"] or _shown(None if f.default is MISSING else f.default)
        found.append(Variable(meta["env"], default, meta["meaning"], meta["group"]))
    return sorted([*found, *OTHER_VARIABLES], key=lambda v: GROUPS.index(v.group))


def reference_markdown() -> str:
    """docs/configuration.md."""
    lines = [_HEADER.rstrip("\n")]
    group = ""
    for var in reference():
        if var.group != group:
            group = var.group
            lines += ["", f"## {group}", "", "| Variable | Default | Meaning |", "|---|---|---|"]
        cells = (f"`{var.name}`", var.default, var.meaning)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
