"""SQLModel tables. Every tenant-owned row carries `tenant_id`; queries always filter on it.

Schema changes go through Alembic migrations (storage/migrations), never create_all.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from chatplane.kit.clock import utcnow

# Timezone-aware timestamps on PostgreSQL; SQLite stores them as text.
_TS = sa.DateTime(timezone=True)


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


class AgentSession(SQLModel, table=True):
    """A conversation with a project's agents. Counters are kept by each turn's
    transaction, so reads never recompute them."""

    __tablename__ = "sessions"
    __table_args__ = (
        sa.Index("ix_sessions_project_created", "tenant_id", "project_id", "created_at"),
        sa.Index("ix_sessions_project_status", "tenant_id", "project_id", "status", "created_at"),
        sa.Index("ix_sessions_tenant_status", "tenant_id", "status"),
        sa.Index("ix_sessions_status_activity", "status", "last_activity_at"),
        sa.Index("ix_sessions_deployment_status", "deployment_id", "status"),
        # Migration 0005: list filtered by channel; the Chat API's chats of a tenant.
        sa.Index("ix_sessions_project_channel", "tenant_id", "project_id", "channel", "created_at"),
        sa.Index("ix_sessions_tenant_channel", "tenant_id", "channel", "created_at"),
        # Migration 0006: sessions history filtered by containment or user, account-wide.
        sa.Index("ix_sessions_project_outcome", "tenant_id", "project_id", "outcome", "created_at"),
        sa.Index("ix_sessions_project_user", "tenant_id", "project_id", "user_id", "created_at"),
        sa.Index("ix_sessions_tenant_created", "tenant_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    runtime_session_id: str = Field(max_length=40, unique=True)
    tenant_id: str = Field(max_length=40)
    project_id: str = Field(max_length=40)
    deployment_id: str | None = Field(default=None, max_length=40)  # None: a draft session
    environment: str = Field(default="", max_length=20)
    agent_id: str = Field(default="", max_length=40)  # the entry agent
    agent_name: str = Field(default="", max_length=64)  # the agent handling it now
    channel: str = Field(default="api", max_length=20)
    user_id: str = Field(default="", max_length=128)
    tags: str = Field(default="[]", sa_type=sa.Text)  # JSON list of strings
    language: str = Field(default="", max_length=20)
    status: str = Field(default="active", max_length=20)  # active, ended
    outcome: str = Field(default="", max_length=20)  # selfService, agent, dropOff
    end_reason: str = Field(default="", max_length=40)
    state: str = Field(default="{}", sa_type=sa.Text)  # the runtime's session state, JSON
    turn_count: int = 0
    message_count: int = 0
    trace_event_count: int = 0
    token_count: int = 0
    estimated_cost: float = 0.0
    error_count: int = 0
    version: int = 0  # bumped by every turn: a stale writer changes nothing
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)
    last_activity_at: datetime = Field(default_factory=utcnow, sa_type=_TS)
    ended_at: datetime | None = Field(default=None, sa_type=_TS)
    # Who created it (API key id or JWT client id; publishable keys see only their own
    # chats) and the creator's metadata (the Chat API's `metadata`); migration 0005.
    created_by: str = Field(default="", max_length=60)
    metadata_json: str = Field(default="", sa_type=sa.Text)
    # Developer traffic (a turn with testContext, a test-suite run): shown as
    # `isDeveloper` by getSessions, excluded from containment unless asked; migration 0006.
    is_developer: bool = Field(default=False)


class SessionMessage(SQLModel, table=True):
    """One message of a session's transcript, in order."""

    __tablename__ = "session_messages"
    __table_args__ = (sa.UniqueConstraint("session_id", "seq", name="uq_session_messages_seq"),)

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(max_length=40)
    session_id: str = Field(foreign_key="sessions.id", ondelete="CASCADE", max_length=40)
    seq: int
    role: str = Field(max_length=20)  # user, assistant
    content: str = Field(sa_type=sa.Text)
    metadata_json: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)


class TraceEventRecord(SQLModel, table=True):
    """One trace event of a turn."""

    __tablename__ = "trace_events"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "seq", name="uq_trace_events_seq"),
        sa.Index("ix_trace_events_session_type", "session_id", "type"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(max_length=40)
    session_id: str = Field(foreign_key="sessions.id", ondelete="CASCADE", max_length=40)
    seq: int
    turn: int
    type: str = Field(max_length=64)
    decision_kind: str = Field(default="", max_length=64)
    span_id: str = Field(max_length=40)
    parent_span_id: str = Field(default="", max_length=40)
    started_at: datetime = Field(sa_type=_TS)
    duration_ms: int = 0
    data: str = Field(default="{}", sa_type=sa.Text)


class SessionAttachment(SQLModel, table=True):
    """A file uploaded to a session. The bytes live under the data directory, named by
    their SHA-256 (content-addressed: identical uploads share one file)."""

    __tablename__ = "session_attachments"
    __table_args__ = (
        sa.Index("ix_session_attachments_session", "session_id", "created_at"),
        sa.Index("ix_session_attachments_sha256", "sha256"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(max_length=40)
    session_id: str = Field(foreign_key="sessions.id", ondelete="CASCADE", max_length=40)
    filename: str = Field(max_length=255)  # the client's name, for display only
    mime_type: str = Field(max_length=100)  # sniffed from the content
    size_bytes: int
    sha256: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)


class SessionFeedback(SQLModel, table=True):
    """A rating of one message (or, with message_id "", of the whole session): one per
    message per rater; a second rating replaces the first."""

    __tablename__ = "session_feedback"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "message_id", "rater", name="uq_session_feedback_rater"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(max_length=40)
    session_id: str = Field(foreign_key="sessions.id", ondelete="CASCADE", max_length=40)
    message_id: str = Field(default="", max_length=40)
    rater: str = Field(max_length=60)  # API key id or JWT client id
    rating: str = Field(max_length=20)  # positive | negative
    comment: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=_TS)


# --- Analytics, tool import and conversation test suites (issue 13, migration 0006) ---


class TaskExecution(SQLModel, table=True):
    """One flow (task) run of an agent as a turn recorded it: success or failure."""

    __tablename__ = "task_executions"
    __table_args__ = (
        # Covering: the containment report reads only this index.
        sa.Index(
            "ix_task_executions_report",
            "tenant_id",
            "project_id",
            "created_at",
            "task_name",
            "status",
            "session_id",
        ),
        sa.Index("ix_task_executions_session", "session_id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(max_length=40)
    project_id: str = Field(max_length=40)
    session_id: str = Field(max_length=40)
    agent_name: str = Field(default="", max_length=64)
    task_name: str = Field(max_length=200)  # `<agent>` or `<agent>.<flow step>`
    task_type: str = Field(default="dialog", max_length=20)
    status: str = Field(max_length=20)  # success | failtask
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)


class LlmCallPayload(SQLModel, table=True):
    """Request and response of one model call (capped, credentials removed), beside its
    usage record (same id) so the usage aggregates stay narrow."""

    __tablename__ = "llm_call_payloads"

    id: str = Field(primary_key=True, max_length=40)  # the usage record's id
    tenant_id: str = Field(max_length=40)
    project_id: str = Field(max_length=40)
    feature: str = Field(default="", max_length=60)  # Agent Node, Chat Completion
    description: str = Field(default="", max_length=300)
    task_id: str = Field(default="", max_length=200)
    request_json: str = Field(default="", sa_type=sa.Text)
    response_json: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)


class AnalyticsJob(SQLModel, table=True):
    """A durable job: billing summary, containment report, suite import or suite run.
    Claimed by one runner (FOR UPDATE SKIP LOCKED / a guarded UPDATE)."""

    __tablename__ = "analytics_jobs"
    __table_args__ = (
        sa.Index("ix_analytics_jobs_status", "status", "created_at"),
        sa.Index("ix_analytics_jobs_latest", "tenant_id", "project_id", "kind", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=60)  # ds-<uuid> | ctr-<uuid>
    tenant_id: str = Field(max_length=40)
    project_id: str = Field(default="", max_length=40)  # "" for account-level jobs
    kind: str = Field(max_length=40)  # billing_summary | containment | suite_import | suite_run
    status: str = Field(default="queued", max_length=20)  # queued, running, succeeded, failed
    percentage: int = 0
    params: str = Field(default="{}", sa_type=sa.Text)
    result: str = Field(default="", sa_type=sa.Text)
    error: str = Field(default="", sa_type=sa.Text)
    created_by: str = Field(default="", max_length=60)
    claimed_by: str = Field(default="", max_length=60)
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=_TS)
    expire_at: datetime = Field(default_factory=utcnow, sa_type=_TS)
    finished_at: datetime | None = Field(default=None, sa_type=_TS)


class UploadedFile(SQLModel, table=True):
    """A file uploaded through `/api/public/uploadfile`; bytes content-addressed on disk."""

    __tablename__ = "uploaded_files"
    __table_args__ = (sa.Index("ix_uploaded_files_sha256", "sha256"),)

    id: str = Field(primary_key=True, max_length=24)  # 24 hex digits
    tenant_id: str = Field(max_length=40)
    file_name: str = Field(max_length=255)
    file_context: str = Field(default="", max_length=40)
    file_extension: str = Field(default="", max_length=20)
    size_bytes: int = 0
    sha256: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)


class ImportedTool(SQLModel, table=True):
    """A tool imported into a project (ABL tools file or OpenAPI operation)."""

    __tablename__ = "imported_tools"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "name", name="uq_imported_tools_project_name"),
    )

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: str = Field(max_length=40)
    project_id: str = Field(foreign_key="projects.id", ondelete="CASCADE", max_length=40)
    name: str = Field(max_length=64)
    source: str = Field(sa_type=sa.Text)  # the tool's ABL declaration
    origin: str = Field(default="", max_length=20)  # abl | openapi
    file_id: str = Field(default="", max_length=24)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=_TS)


class ConversationTestSuite(SQLModel, table=True):
    """A conversation test suite of a project, addressed by name."""

    __tablename__ = "test_suites"
    __table_args__ = (sa.UniqueConstraint("project_id", "name", name="uq_test_suites_name"),)

    id: str = Field(primary_key=True, max_length=60)  # ctc-<uuid>
    tenant_id: str = Field(max_length=40)
    project_id: str = Field(foreign_key="projects.id", ondelete="CASCADE", max_length=40)
    name: str = Field(max_length=200)
    document: str = Field(sa_type=sa.Text)  # the suite document (JSON)
    created_by: str = Field(default="", max_length=60)
    created_at: datetime = Field(default_factory=utcnow, sa_type=_TS)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=_TS)
