"""Agent sessions and what they leave behind: messages, trace events, attachments,
feedback."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from chatplane.kit.clock import utcnow
from chatplane.storage.models.base import TS as _TS


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
