"""usage_records: a covering index for the usage aggregates

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = [
    "tenant_id",
    "project_id",
    "created_at",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "cost",
    "latency_ms",
]


def upgrade() -> None:
    # Same leading columns as the old index, so it replaces it.
    op.create_index("ix_usage_covering", "usage_records", COLUMNS)
    op.drop_index("ix_usage_tenant_project_created", table_name="usage_records")


def downgrade() -> None:
    op.create_index(
        "ix_usage_tenant_project_created",
        "usage_records",
        ["tenant_id", "project_id", "created_at"],
    )
    op.drop_index("ix_usage_covering", table_name="usage_records")
