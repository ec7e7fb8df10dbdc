"""session attachments and feedback, session creator/metadata, publishable API keys

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("type", sa.String(length=20), nullable=False, server_default="secret")
        )
        batch.add_column(
            sa.Column("allowed_origins", sa.Text(), nullable=False, server_default="[]")
        )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(
            sa.Column("created_by", sa.String(length=60), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("metadata_json", sa.Text(), nullable=False, server_default=""))
    op.create_index(
        "ix_sessions_project_channel",
        "sessions",
        ["tenant_id", "project_id", "channel", "created_at"],
    )
    op.create_index(
        "ix_sessions_tenant_channel", "sessions", ["tenant_id", "channel", "created_at"]
    )
    op.create_table(
        "session_attachments",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column(
            "session_id",
            sa.String(length=40),
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("mime_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index(
        "ix_session_attachments_session", "session_attachments", ["session_id", "created_at"]
    )
    op.create_index("ix_session_attachments_sha256", "session_attachments", ["sha256"])
    op.create_table(
        "session_feedback",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column(
            "session_id",
            sa.String(length=40),
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("rater", sa.String(length=60), nullable=False),
        sa.Column("rating", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("session_id", "message_id", "rater", name="uq_session_feedback_rater"),
    )


def downgrade() -> None:
    op.drop_table("session_feedback")
    op.drop_index("ix_session_attachments_sha256", table_name="session_attachments")
    op.drop_index("ix_session_attachments_session", table_name="session_attachments")
    op.drop_table("session_attachments")
    op.drop_index("ix_sessions_tenant_channel", table_name="sessions")
    op.drop_index("ix_sessions_project_channel", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("metadata_json")
        batch.drop_column("created_by")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("allowed_origins")
        batch.drop_column("type")
