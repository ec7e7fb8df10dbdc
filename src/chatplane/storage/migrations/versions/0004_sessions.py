"""sessions, session_messages, trace_events: what agent turns leave behind

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("runtime_session_id", sa.String(length=40), nullable=False, unique=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("deployment_id", sa.String(length=40), nullable=True),
        sa.Column("environment", sa.String(length=20), nullable=False),
        sa.Column("agent_id", sa.String(length=40), nullable=False),
        sa.Column("agent_name", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("end_reason", sa.String(length=40), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("turn_count", sa.Integer(), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("trace_event_count", sa.Integer(), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.Column("estimated_cost", sa.Float(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_activity_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
    )
    op.create_index(
        "ix_sessions_project_created", "sessions", ["tenant_id", "project_id", "created_at"]
    )
    op.create_index(
        "ix_sessions_project_status",
        "sessions",
        ["tenant_id", "project_id", "status", "created_at"],
    )
    op.create_index("ix_sessions_tenant_status", "sessions", ["tenant_id", "status"])
    op.create_index("ix_sessions_status_activity", "sessions", ["status", "last_activity_at"])
    op.create_index("ix_sessions_deployment_status", "sessions", ["deployment_id", "status"])
    op.create_table(
        "session_messages",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column(
            "session_id",
            sa.String(length=40),
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("session_id", "seq", name="uq_session_messages_seq"),
    )
    op.create_table(
        "trace_events",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column(
            "session_id",
            sa.String(length=40),
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("decision_kind", sa.String(length=64), nullable=False),
        sa.Column("span_id", sa.String(length=40), nullable=False),
        sa.Column("parent_span_id", sa.String(length=40), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.UniqueConstraint("session_id", "seq", name="uq_trace_events_seq"),
    )
    op.create_index("ix_trace_events_session_type", "trace_events", ["session_id", "type"])


def downgrade() -> None:
    op.drop_index("ix_trace_events_session_type", table_name="trace_events")
    op.drop_table("trace_events")
    op.drop_table("session_messages")
    for name in (
        "ix_sessions_deployment_status",
        "ix_sessions_status_activity",
        "ix_sessions_tenant_status",
        "ix_sessions_project_status",
        "ix_sessions_project_created",
    ):
        op.drop_index(name, table_name="sessions")
    op.drop_table("sessions")
