"""SQLModel tables. Every tenant-owned row carries `tenant_id`; queries always filter on it.

Schema changes go through Alembic migrations (storage/migrations), never create_all.
The tables live in three modules by area; this package names them all.
"""

from __future__ import annotations

from chatplane.storage.models.analytics import (
    AnalyticsJob,
    ConversationTestSuite,
    ImportedTool,
    LlmCallPayload,
    TaskExecution,
    UploadedFile,
)
from chatplane.storage.models.core import (
    Agent,
    ApiKey,
    Deployment,
    JwtClient,
    Project,
    Tenant,
    UsageRecord,
)
from chatplane.storage.models.sessions import (
    AgentSession,
    SessionAttachment,
    SessionFeedback,
    SessionMessage,
    TraceEventRecord,
)

__all__ = [
    "Agent",
    "AgentSession",
    "AnalyticsJob",
    "ApiKey",
    "ConversationTestSuite",
    "Deployment",
    "ImportedTool",
    "JwtClient",
    "LlmCallPayload",
    "Project",
    "SessionAttachment",
    "SessionFeedback",
    "SessionMessage",
    "TaskExecution",
    "Tenant",
    "TraceEventRecord",
    "UploadedFile",
    "UsageRecord",
]
