"""Tenants, keys, projects, usage, agents and deployments."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from chatplane.kit.clock import utcnow
from chatplane.storage.models.base import TS as _TS


class Tenant(SQLModel, table=True):
    """A customer: owns projects, keys, clients and usage."""

    __tablename__ = "tenants"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    default_model: str = Field(default="", max_length=200)
    # Anthropic API key encrypted with the server key (empty: use the server's key).
    anthropic_key_encrypted: str = Field(default="")
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)


class ApiKey(SQLModel, table=True):
    """An API key. Only the SHA-256 of the secret is stored."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", index=True, max_length=40)
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=20)
    secret_hash: str = Field(max_length=64, unique=True)
    scopes: str = Field(default="")  # space-separated
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)
    revoked_at: datetime | None = Field(default=None, sa_type=_TS)
    # secret (full access of its scopes) | publishable (`pk_live_`: the Chat API only,
    # its own chats, from `allowed_origins`); migration 0005.
    type: str = Field(default="secret", max_length=20)
    allowed_origins: str = Field(default="[]", sa_type=sa.Text)  # JSON list of origins


class JwtClient(SQLModel, table=True):
    """A client app that signs HS256 JWTs (`auth:` header) with its own secret."""

    __tablename__ = "jwt_clients"

    id: str = Field(primary_key=True, max_length=60)  # the `appId` claim
    tenant_id: str = Field(foreign_key="tenants.id", index=True, max_length=40)
    name: str = Field(max_length=200)
    secret_encrypted: str
    scopes: str = Field(default="")
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)
    revoked_at: datetime | None = Field(default=None, sa_type=_TS)


class Project(SQLModel, table=True):
    """A tenant's project: agents, sessions and model settings live under it."""

    __tablename__ = "projects"
    __table_args__ = (sa.Index("ix_projects_tenant_created", "tenant_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    default_model: str = Field(default="", max_length=200)
    tier_models: str = Field(default="{}")  # JSON object tier -> model id
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=_TS)


class UsageRecord(SQLModel, table=True):
    """One LLM call, streamed or not, succeeded or failed."""

    __tablename__ = "usage_records"
    # Covering index: the usage aggregates read only the index (about 4x faster at 500k
    # rows per project on SQLite; see migration 0002).
    __table_args__ = (
        sa.Index(
            "ix_usage_covering",
            "tenant_id",
            "project_id",
            "created_at",
            "model",
            "provider",
            "input_tokens",
            "output_tokens",
            "cost",
            "latency_ms",
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(max_length=40)
    project_id: str = Field(max_length=40)
    session_id: str = Field(default="", max_length=200)
    model: str = Field(max_length=200)
    provider: str = Field(max_length=40)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost: float | None = None
    latency_ms: int = 0
    ttft_ms: int | None = None
    finish_reason: str = Field(default="", max_length=40)
    status: str = Field(default="ok", max_length=40)  # ok, error, cancelled
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)


class Agent(SQLModel, table=True):
    """A project's agent source, compiled at every save. The id is stable across saves."""

    __tablename__ = "agents"
    __table_args__ = (sa.UniqueConstraint("project_id", "name", name="uq_agents_project_name"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    project_id: str = Field(foreign_key="projects.id", ondelete="CASCADE", max_length=40)
    name: str = Field(max_length=64)
    format: str = Field(max_length=10)  # abl | yaml
    source: str = Field(sa_type=sa.Text)
    description: str = Field(default="", sa_type=sa.Text)
    warnings: str = Field(default="[]", sa_type=sa.Text)  # JSON list of diagnostics
    ir: str = Field(sa_type=sa.Text)  # JSON: lang.to_json(program)
    content_hash: str = Field(max_length=64)  # SHA-256 of the source, hex
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=_TS)


class Deployment(SQLModel, table=True):
    """An immutable snapshot of a project's compiled agents in one environment.

    Only the lifecycle columns (status and its timestamps) ever change."""

    __tablename__ = "deployments"
    __table_args__ = (
        sa.Index("ix_deployments_project_env_status", "project_id", "environment", "status"),
        sa.Index("ix_deployments_project_created", "project_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(foreign_key="tenants.id", max_length=40)
    project_id: str = Field(foreign_key="projects.id", ondelete="CASCADE", max_length=40)
    environment: str = Field(max_length=20)  # dev | staging | production
    status: str = Field(max_length=20)  # active | draining | retired
    entry_agent_name: str = Field(max_length=64)
    label: str = Field(default="", max_length=200)
    # JSON: {agent name: {id, format, source, content_hash, ir}}
    snapshot: str = Field(sa_type=sa.Text)
    content_hash: str = Field(max_length=64)
    previous_deployment_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)
    activated_at: datetime | None = Field(default=None, sa_type=_TS)
    retired_at: datetime | None = Field(default=None, sa_type=_TS)
