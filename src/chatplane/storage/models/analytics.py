"""Analytics, tool import and conversation test suites (migration 0006)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from chatplane.kit.clock import utcnow
from chatplane.storage.models.base import TS as _TS


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
