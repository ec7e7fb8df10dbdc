"""Session domain types: a turn's request and result as the API layer sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from chatplane.runtime import TestContext, TraceEvent, TurnAction


class SessionStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class Outcome(StrEnum):
    """How a conversation ended (containment)."""

    NONE = ""
    SELF_SERVICE = "selfService"  # COMPLETE reached
    AGENT = "agent"  # ESCALATE: a human took over
    DROP_OFF = "dropOff"  # ended or idle without either


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file uploaded to a session; `path` is where its bytes are (content-addressed)."""

    id: str
    session_id: str
    filename: str
    mime_type: str
    size_bytes: int
    sha256: str
    created_at: datetime
    path: Path


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """One user turn, converted from the wire."""

    project_id: str
    message: str
    session_id: str = ""
    deployment_id: str = ""
    environment: str = ""
    agent_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    test: TestContext | None = None
    channel: str = "api"
    draft: bool = False  # run the project's current sources, whatever is deployed
    # Files for the model with the user's message (POST /api/v1/chat/send), already
    # checked to belong to the session: PDFs as document blocks, images as image blocks,
    # text inline; their ids are also in `metadata["attachmentIds"]`.
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """A trace event with its absolute start time."""

    event: TraceEvent
    started_at: datetime


@dataclass(frozen=True, slots=True)
class TurnResult:
    session_id: str
    response: str
    action: TurnAction
    state: dict[str, Any]
    events: tuple[TimedEvent, ...]
    rich_content: tuple[dict[str, Any], ...] = ()
    actions: tuple[dict[str, Any], ...] = ()
    # Ids of the messages the turn stored (user, then assistant when there was a reply);
    # empty when the turn does not report them.
    message_ids: tuple[str, ...] = ()
    stored_at: datetime | None = None  # when those messages were stored


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session and its counters, as the sessions API shows it."""

    id: str
    runtime_session_id: str
    project_id: str
    deployment_id: str
    environment: str
    agent_id: str
    agent_name: str
    status: str
    channel: str
    user_id: str
    outcome: str
    end_reason: str
    turn_count: int
    message_count: int
    trace_event_count: int
    token_count: int
    estimated_cost: float
    error_count: int
    duration_ms: float
    created_at: datetime
    last_activity_at: datetime
    ended_at: datetime | None
    created_by: str
    metadata: dict[str, Any]
    state: dict[str, Any]  # the public form a turn returns


@dataclass(frozen=True, slots=True)
class SessionPage:
    sessions: tuple[SessionInfo, ...]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    id: str
    role: str
    content: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredTraceEvent:
    id: str
    seq: int
    turn: int
    type: str
    decision_kind: str
    span_id: str
    parent_span_id: str
    started_at: datetime
    duration_ms: int
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Latency:
    avg_ms: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class ModelShare:
    model: str
    provider: str
    requests: int
    input_tokens: int
    output_tokens: int
    estimated_cost: float
    latency: Latency


@dataclass(frozen=True, slots=True)
class SessionMetrics:
    input_tokens: int
    output_tokens: int
    estimated_cost: float
    llm_calls: int
    latency: Latency
    tool_calls: int
    tool_errors: int
    errors: int
    turns: int
    messages: int
    trace_events: int
    feedback_positive: int
    feedback_negative: int
    duration_ms: float
    by_model: tuple[ModelShare, ...]


@dataclass(frozen=True, slots=True)
class TracePage:
    session_id: str
    events: tuple[StoredTraceEvent, ...]
    total: int
    metrics: SessionMetrics | None


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    id: str
    replaced: bool
