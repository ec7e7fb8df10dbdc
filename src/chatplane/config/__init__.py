"""Configuration from environment variables, as a `pydantic-settings` model.

Each `Settings` field declares its variable (the validation alias), default, type, meaning
(the description) and group: with the variables read elsewhere
(`config.docs.OTHER_VARIABLES`) they are the table `python -m chatplane.config` prints
as docs/configuration.md (tests/unit/test_config_reference.py keeps the two in step).

`Settings.from_env()` reads the environment once, at start-up; `Settings(**values)` takes
the values given and reads nothing (the tests build theirs that way). An empty variable
counts as unset; a value that does not parse raises `ConfigError` naming the variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from chatplane.config import docs as ref
from chatplane.config.sources import (
    AtLeastOne,
    CommaList,
    ConfigError,
    Environment,
    EventLoop,
    LogFormat,
    NotNegative,
    Switch,
    Transport,
    descriptor_path,
    explain,
    gateway_file,
)

__all__ = [  # and re-exported from config.sources, for the callers that import them here
    "ConfigError",
    "Settings",
    "default_max_inflight",
    "descriptor_path",
    "gateway_file",
    "normalize_database_url",
    "reference",
    "reference_markdown",
    "usable_cpus",
]

INFLIGHT_PER_CORE = 96
DELAY_MS_VARIABLE = "CHATPLANE_LOCAL_TOKEN_DELAY_MS"  # milliseconds; the field: seconds


def _setting(
    default: Any,
    env: str,
    meaning: str,
    *,
    shown: str = "",
    group: str = ref.LISTENERS,
    **more: Any,
) -> Any:
    """A Settings field read from `env`: `meaning` is the reference's one line, `shown`
    the default as documented when the field's own default does not say it (computed
    defaults, other units)."""
    return Field(
        default,
        validation_alias=env,
        description=meaning,
        json_schema_extra={"group": group, "shown": shown},
        **more,
    )


class Settings(BaseSettings):
    """Everything the server reads from its environment, read once at start-up."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        case_sensitive=True,
        env_ignore_empty=True,  # an empty value counts as unset
        validate_by_name=True,  # Settings(http_port=0) as well as the variable's name
        validate_by_alias=True,
    )

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
    data_dir: Path = _setting(
        Path("var"),
        "CHATPLANE_DATA_DIR",
        "SQLite database, server key file, attachments, Envoy's rendered config",
        shown="`./var` (relative to the working directory)",
        group=ref.STORAGE,
    )
    database_url: str = _setting(
        "",
        "CHATPLANE_DATABASE_URL",
        "e.g. `postgresql://user:pass@host:5432/db` (asyncpg) or `sqlite:///path.db`",
        shown="SQLite in the data dir",
        group=ref.STORAGE,
        validate_default=True,  # the default follows the data directory
    )
    bootstrap_api_key: str | None = _setting(
        None,
        "CHATPLANE_BOOTSTRAP_API_KEY",
        "Becomes the admin key of the default tenant on the first start (else one is printed)",
        group=ref.SECURITY,
    )
    secret_key: str | None = _setting(
        None,
        "CHATPLANE_SECRET_KEY",
        "Encrypts secrets at rest (tenant Anthropic keys, JWT client secrets)",
        shown="key file in the data dir",
        group=ref.SECURITY,
    )
    redis_url: str | None = _setting(
        None,
        "CHATPLANE_REDIS_URL",
        "Share rate limits between replicas through Redis (e.g. `redis://host:6379/0`)",
        group=ref.LIMITS,
    )
    rate_limit_per_minute: int = _setting(
        600,
        "CHATPLANE_RATE_LIMIT_PER_MINUTE",
        "Per-tenant calls in any rolling 60 s (0: unlimited)",
        group=ref.LIMITS,
    )
    rate_limit_per_hour: int = _setting(
        20_000,
        "CHATPLANE_RATE_LIMIT_PER_HOUR",
        "Per-tenant calls in any rolling hour (0: unlimited)",
        group=ref.LIMITS,
    )
    session_rate_limit_per_minute: int = _setting(
        60,
        "CHATPLANE_SESSION_RATE_LIMIT_PER_MINUTE",
        "Chat calls per `sessionId` in any rolling minute (0: unlimited)",
        group=ref.LIMITS,
    )
    shutdown_grace_seconds: float = _setting(
        10.0,
        "CHATPLANE_SHUTDOWN_GRACE_SECONDS",
        "How long in-flight calls may finish after SIGTERM; streams still running then end "
        'with an `error` event "server shutting down"',
    )
    workers: AtLeastOne = _setting(
        1,
        "CHATPLANE_WORKERS",
        "`chatplane run`: server processes behind Envoy (one core each; below 1 counts as 1)",
    )
    envoy_concurrency: int | None = _setting(
        None,
        "CHATPLANE_ENVOY_CONCURRENCY",
        "`chatplane run`: Envoy worker threads (empty: 2, or 1 on a 1-CPU machine; 0: "
        "Envoy's own default, one per hardware thread)",
        shown="2",
        ge=0,
    )
    anthropic_api_key: str | None = _setting(
        None,
        "ANTHROPIC_API_KEY",
        "Server-wide Anthropic credentials (tenants may set their own; none: the local model)",
        group=ref.MODELS,
    )
    anthropic_base_url: str | None = _setting(
        None,
        "ANTHROPIC_BASE_URL",
        "Where the `anthropic` SDK sends requests",
        shown="Anthropic's",
        group=ref.MODELS,
    )
    anthropic_transport: Transport = _setting(
        "lean",
        "CHATPLANE_ANTHROPIC_TRANSPORT",
        "How the Anthropic provider sends `messages.create`/`stream`: `lean`, chatplane's own "
        "request path on the SDK's aiohttp session (byte-equivalent to the SDK's requests); "
        "`sdk`, through the official SDK's client",
        group=ref.MODELS,
    )
    prices_file: Path | None = _setting(
        None,
        "CHATPLANE_PRICES_FILE",
        "JSON file overriding or extending model prices",
        shown="packaged prices",
        group=ref.MODELS,
    )
    log_level: str = _setting(
        "INFO", "CHATPLANE_LOG_LEVEL", "Logging level", group=ref.OBSERVABILITY
    )
    max_inflight: NotNegative = _setting(
        0,
        "CHATPLANE_MAX_INFLIGHT",
        'Calls in flight per server process; beyond, 503 "Server overloaded" + Retry-After at once',
        shown=f"{INFLIGHT_PER_CORE} per core (max 2 cores)",
        group=ref.LIMITS,
    )
    jwt_max_lifetime_seconds: int = _setting(
        86_400,
        "CHATPLANE_JWT_MAX_LIFETIME_SECONDS",
        "Longest JWT lifetime accepted (`exp` - `iat`, or `exp` - now); `exp` is required",
        group=ref.SECURITY,
    )
    # Seconds here; the variable gives whole milliseconds (see _milliseconds).
    local_token_delay: float = _setting(
        0.0,
        DELAY_MS_VARIABLE,
        "Milliseconds between the local model's tokens (demos, shutdown tests)",
        shown="`0`",
        group=ref.MODELS,
    )
    max_active_sessions: int = _setting(
        1000,
        "CHATPLANE_MAX_ACTIVE_SESSIONS",
        "Active agent sessions per tenant (0: unlimited)",
        group=ref.AGENTS,
    )
    max_concurrent_turns: int = _setting(
        64,
        "CHATPLANE_MAX_CONCURRENT_TURNS",
        "Agent turns running at once per server process",
        group=ref.AGENTS,
    )
    turn_queue: int = _setting(
        256,
        "CHATPLANE_TURN_QUEUE",
        "Agent turns waiting beyond those; more is 429 `Execution queue full`",
        group=ref.AGENTS,
    )
    tool_allowed_hosts: CommaList = _setting(
        (),
        "CHATPLANE_TOOL_ALLOWED_HOSTS",
        "Hosts (`host` or `host:port`, comma-separated) http tools may reach despite the "
        "private-address rule",
        group=ref.AGENTS,
    )
    session_idle_minutes: float = _setting(
        30.0,
        "CHATPLANE_SESSION_IDLE_MINUTES",
        "Active sessions without activity this long end (outcome `dropOff`; 0: never)",
        group=ref.AGENTS,
    )
    attachment_max_bytes: int = _setting(
        20_000_000,
        "CHATPLANE_ATTACHMENT_MAX_BYTES",
        "Largest session attachment upload (413 above; the gateway route takes up to 64 MiB)",
        group=ref.LIMITS,
    )
    upload_max_bytes: int = _setting(
        10_000_000,
        "CHATPLANE_UPLOAD_MAX_BYTES",
        "Largest `/api/public/uploadfile` file (413 above; keep it at most the attachment "
        "limit, which grpc's receive limit follows)",
        group=ref.LIMITS,
    )
    job_concurrency: AtLeastOne = _setting(
        2,
        "CHATPLANE_JOB_CONCURRENCY",
        "Durable analytics jobs (billing summary, containment report) running at once per "
        "process (below 1 counts as 1)",
        group=ref.ANALYTICS,
    )
    xo_rate_limit_per_minute: int = _setting(
        60,
        "CHATPLANE_XO_RATE_LIMIT_PER_MINUTE",
        "The vendor's per-bot limit on the XO analytics routes, per minute",
        group=ref.ANALYTICS,
    )
    xo_rate_limit_per_hour: int = _setting(
        1800, "CHATPLANE_XO_RATE_LIMIT_PER_HOUR", "The same, per hour", group=ref.ANALYTICS
    )
    llm_payloads: Switch = _setting(
        True,
        "CHATPLANE_LLM_PAYLOADS",
        "Keep model call payloads for the LLM usage logs (`off`, `0` or `false`: keep none)",
        shown="`on`",
        group=ref.ANALYTICS,
    )
    llm_payload_max_bytes: int = _setting(
        32_768,
        "CHATPLANE_LLM_PAYLOAD_MAX_BYTES",
        "Each kept payload is cut to this many bytes",
        group=ref.ANALYTICS,
    )
    log_format: LogFormat = _setting(
        "json",
        "CHATPLANE_LOG_FORMAT",
        "`json`: one JSON object per line with `request_id`; `text`: classic text lines",
        group=ref.OBSERVABILITY,
    )
    metrics_token: str | None = _setting(
        None,
        "CHATPLANE_METRICS_TOKEN",
        "Lets non-loopback clients read `GET /metrics` with `Authorization: Bearer <token>` "
        "(unset: loopback only)",
        group=ref.OBSERVABILITY,
    )
    event_loop: EventLoop = _setting(
        "",
        "CHATPLANE_EVENT_LOOP",
        "`chatplane serve`/`run` (and each worker): `uvloop` (faster; fails at start if not "
        "installed) or `asyncio` (the standard library's loop)",
        shown="`uvloop` when installed",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """`Settings(...)` takes only what it is given: the environment is read by
        `from_env`, once, not by every construction."""
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of `environ` (the process environment by default)."""
        values = Environment(cls, os.environ if environ is None else environ)()
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise explain(exc) from None

    @model_validator(mode="before")
    @classmethod
    def _milliseconds(cls, data: Any) -> Any:
        """CHATPLANE_LOCAL_TOKEN_DELAY_MS is whole milliseconds; the field is seconds."""
        if isinstance(data, dict) and DELAY_MS_VARIABLE in data:
            data = dict(data)
            raw = str(data.pop(DELAY_MS_VARIABLE)).strip()
            try:
                data["local_token_delay"] = int(raw) / 1000
            except ValueError:
                raise ValueError(f"{DELAY_MS_VARIABLE} must be an integer, got {raw!r}") from None
        return data

    @field_validator("database_url", mode="after")
    @classmethod
    def _database(cls, value: str, info: ValidationInfo) -> str:
        if not value:  # SQLite in the data directory
            data_dir = info.data.get("data_dir") or Path("var")
            value = f"sqlite+aiosqlite:///{(Path(data_dir) / 'chatplane.db').resolve()}"
        return normalize_database_url(value)


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
    return INFLIGHT_PER_CORE * min(usable_cpus(), 2)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity, else the machine's), at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(cores or 1, 1)


# --- the configuration reference (docs/configuration.md) ------------------------------


def reference() -> list[ref.Variable]:
    """Every variable chatplane reads, grouped as the reference shows them."""
    return ref.ordered(ref.rows(Settings.model_fields))


def reference_markdown() -> str:
    """docs/configuration.md."""
    return ref.markdown(reference())
