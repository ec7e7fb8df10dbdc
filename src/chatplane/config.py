"""Configuration from environment variables (documented in README.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
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
    # Pause between the local provider's tokens (demos, shutdown tests); 0 in production.
    local_token_delay: float = 0.0

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
            local_token_delay=_int(env, "CHATPLANE_LOCAL_TOKEN_DELAY_MS", 0) / 1000,
        )


def normalize_database_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite://` URLs and pick the async drivers."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


REPO_ROOT = Path(__file__).resolve().parents[2]


def descriptor_path() -> Path:
    """The descriptor set `make gen` builds, which Envoy's transcoder loads."""
    override = os.environ.get("CHATPLANE_DESCRIPTOR")
    return Path(override) if override else REPO_ROOT / "gen" / "descriptor.binpb"
