"""analytics: task executions, LLM call payloads, durable jobs, uploaded files, imported
tools, test suites; sessions.is_developer and the sessions-history indexes

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(
            sa.Column("is_developer", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index(
        "ix_sessions_project_outcome",
        "sessions",
        ["tenant_id", "project_id", "outcome", "created_at"],
    )
    op.create_index(
        "ix_sessions_project_user", "sessions", ["tenant_id", "project_id", "user_id", "created_at"]
    )
    op.create_index("ix_sessions_tenant_created", "sessions", ["tenant_id", "created_at"])

    op.create_table(
        "task_executions",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("agent_name", sa.String(length=64), nullable=False),
        sa.Column("task_name", sa.String(length=200), nullable=False),
        sa.Column("task_type", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index(
        "ix_task_executions_report",
        "task_executions",
        ["tenant_id", "project_id", "created_at", "task_name", "status", "session_id"],
    )
    op.create_index("ix_task_executions_session", "task_executions", ["session_id"])

    op.create_table(
        "llm_call_payloads",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("feature", sa.String(length=60), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("task_id", sa.String(length=200), nullable=False),
        sa.Column("request_json", sa.Text(), nullable=False),
        sa.Column("response_json", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )

    op.create_table(
        "analytics_jobs",
        sa.Column("id", sa.String(length=60), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("percentage", sa.Integer(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=60), nullable=False),
        sa.Column("claimed_by", sa.String(length=60), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("expire_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
    )
    op.create_index("ix_analytics_jobs_status", "analytics_jobs", ["status", "created_at"])
    op.create_index(
        "ix_analytics_jobs_latest",
        "analytics_jobs",
        ["tenant_id", "project_id", "kind", "created_at"],
    )

    op.create_table(
        "uploaded_files",
        sa.Column("id", sa.String(length=24), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_context", sa.String(length=40), nullable=False),
        sa.Column("file_extension", sa.String(length=20), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_uploaded_files_sha256", "uploaded_files", ["sha256"])

    op.create_table(
        "imported_tools",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column(
            "project_id",
            sa.String(length=40),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("file_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_imported_tools_project_name"),
    )

    op.create_table(
        "test_suites",
        sa.Column("id", sa.String(length=60), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column(
            "project_id",
            sa.String(length=40),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=60), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_test_suites_name"),
    )


def downgrade() -> None:
    op.drop_table("test_suites")
    op.drop_table("imported_tools")
    op.drop_index("ix_uploaded_files_sha256", table_name="uploaded_files")
    op.drop_table("uploaded_files")
    op.drop_index("ix_analytics_jobs_latest", table_name="analytics_jobs")
    op.drop_index("ix_analytics_jobs_status", table_name="analytics_jobs")
    op.drop_table("analytics_jobs")
    op.drop_table("llm_call_payloads")
    op.drop_index("ix_task_executions_session", table_name="task_executions")
    op.drop_index("ix_task_executions_report", table_name="task_executions")
    op.drop_table("task_executions")
    op.drop_index("ix_sessions_tenant_created", table_name="sessions")
    op.drop_index("ix_sessions_project_user", table_name="sessions")
    op.drop_index("ix_sessions_project_outcome", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("is_developer")
