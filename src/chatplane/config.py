"""Configuration from environment variables (documented in README.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Everything the server reads from its environment, read once at start-up."""

    http_port: int = 8080
    grpc_port: int = 50051
    host: str = "127.0.0.1"
    data_dir: Path = Path("var")
    database_url: str = ""
    bootstrap_api_key: str | None = None
    secret_key: str | None = None
    redis_url: str | None = None
    rate_limit_per_minute: int = 600
    rate_limit_per_hour: int = 20_000
    session_rate_limit_per_minute: int = 60  # chat calls per sessionId (0: unlimited)
    shutdown_grace_seconds: float = 10.0
    workers: int = 1  # server processes behind Envoy (`chatplane run`)
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    prices_file: Path | None = None
    log_level: str = "INFO"
    # Calls in flight per server process; beyond it, 503 "Server overloaded" (0: default).
    max_inflight: int = 0
    # JWTs: `exp` is required and exp - iat (or exp - now) may not exceed this.
    jwt_max_lifetime_seconds: int = 86_400
    # Pause between the local provider's tokens (demos, shutdown tests); 0 in production.
    local_token_delay: float = 0.0
    # Agent turns: active sessions per tenant (0: unlimited), turns running at once per
    # process and turns waiting beyond those, hosts http tools may reach despite the
    # outbound safety rules.
    max_active_sessions: int = 1000
    max_concurrent_turns: int = 64
    turn_queue: int = 256
    tool_allowed_hosts: tuple[str, ...] = ()
    # Sessions: minutes without activity before a session ends (0: never), and the
    # largest attachment upload in bytes.
    session_idle_minutes: float = 30.0
    attachment_max_bytes: int = 20_000_000
    # XO file uploads (/api/public/uploadfile), in bytes; keep it at most the attachment
    # limit (grpc's receive limit follows that one).
    upload_max_bytes: int = 10_000_000
    # Analytics: durable jobs running at once per process; the vendor's per-bot limits
    # on the XO routes (60 a minute, 1800 an hour); model call payloads kept for the LLM
    # usage logs (off: none), each capped at this many bytes.
    job_concurrency: int = 2
    xo_rate_limit_per_minute: int = 60
    xo_rate_limit_per_hour: int = 1800
    llm_payloads: bool = True
    llm_payload_max_bytes: int = 32_768
    # Logs: `json` (one object per line) or `text`. Metrics: the bearer token that lets
    # non-loopback clients read GET /metrics (unset: loopback only).
    log_format: str = "json"
    metrics_token: str | None = None

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
        )


def normalize_database_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite://` URLs and pick the async drivers."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


INFLIGHT_PER_CORE = 96


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
