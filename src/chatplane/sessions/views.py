"""Rows to what sessions' readers see: session info, transcript entries, trace events,
per-session metrics; and the checks every listing shares (page bounds). Pure functions."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chatplane.agents.checks import agent_not_found
from chatplane.errors import InvalidArgument, NotFound
from chatplane.runtime import SessionState
from chatplane.sessions.types import (
    Attachment,
    Latency,
    ModelShare,
    SessionInfo,
    SessionMetrics,
    StoredTraceEvent,
    TranscriptEntry,
)
from chatplane.storage.models import (
    AgentSession,
    SessionAttachment,
    SessionMessage,
    TraceEventRecord,
)

DEFAULT_LIMIT = 50
MAX_METADATA_BYTES = 16 * 1024
MAX_LIMIT = 200


def session_not_found() -> NotFound:
    return NotFound("Session not found", reason="SESSION_NOT_FOUND")


def page_bounds(
    limit: int | None, offset: int, *, default: int = DEFAULT_LIMIT, most: int = MAX_LIMIT
) -> tuple[int, int]:
    """Checked page size and offset; errors name the field."""
    size = default if limit is None else limit
    if not 1 <= size <= most:
        raise InvalidArgument(f"Invalid request: limit must be between 1 and {most}", field="limit")
    if offset < 0:
        raise InvalidArgument("Invalid request: offset must be 0 or more", field="offset")
    return size, offset


def parse_json(text: str, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _state(row: AgentSession) -> dict[str, Any]:
    if not row.state:
        return {}
    try:
        return public_state(SessionState.loads(row.state))
    except Exception:  # an unreadable state is shown empty rather than failing the read
        return {}


def public_state(state: SessionState) -> dict[str, Any]:
    """The state a turn returns: the session variables, then where the session stands."""
    return {
        **state.vars,
        "currentAgent": state.agent,
        "currentStep": state.step,
        "status": state.status,
    }


def to_info(row: AgentSession, *, with_state: bool = False) -> SessionInfo:
    end = row.ended_at or row.last_activity_at
    duration = max(0.0, (end - row.created_at).total_seconds() * 1000) if end else 0.0
    return SessionInfo(
        id=row.id,
        runtime_session_id=row.runtime_session_id,
        project_id=row.project_id,
        deployment_id=row.deployment_id or "",
        environment=row.environment,
        agent_id=row.agent_id,
        agent_name=row.agent_name,
        status=row.status,
        channel=row.channel,
        user_id=row.user_id,
        outcome=row.outcome,
        end_reason=row.end_reason,
        turn_count=row.turn_count,
        message_count=row.message_count,
        trace_event_count=row.trace_event_count,
        token_count=row.token_count,
        estimated_cost=row.estimated_cost,
        error_count=row.error_count,
        duration_ms=round(duration, 3),
        created_at=row.created_at,
        last_activity_at=row.last_activity_at,
        ended_at=row.ended_at,
        created_by=row.created_by,
        metadata=parse_json(row.metadata_json, {}),
        state=_state(row) if with_state else {},
    )


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def latency(values: Sequence[float]) -> Latency:
    ordered = sorted(values)
    if not ordered:
        return Latency()
    return Latency(
        avg_ms=round(sum(ordered) / len(ordered), 2),
        p50_ms=percentile(ordered, 50),
        p95_ms=percentile(ordered, 95),
        p99_ms=percentile(ordered, 99),
        max_ms=float(ordered[-1]),
    )


def number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def to_entry(row: SessionMessage) -> TranscriptEntry:
    return TranscriptEntry(row.id, row.role, row.content, row.created_at)


def to_event(row: TraceEventRecord) -> StoredTraceEvent:
    data = parse_json(row.data, {})
    return StoredTraceEvent(
        id=row.id,
        seq=row.seq,
        turn=row.turn,
        type=row.type,
        decision_kind=row.decision_kind,
        span_id=row.span_id,
        parent_span_id=row.parent_span_id,
        started_at=row.started_at,
        duration_ms=row.duration_ms,
        data=data if isinstance(data, dict) else {"value": data},
    )


def session_metrics(
    row: AgentSession, events: Sequence[TraceEventRecord], feedback: Mapping[str, int]
) -> SessionMetrics:
    """From the session's counters, its `llm_call` / `tool_call` / `tool_result` trace
    events (model, tokens, cost, latency per call) and its feedback counts."""
    calls = [parse_json(e.data, {}) for e in events if e.type == "llm_call"]
    per_model: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for data in calls:
        key = (str(data.get("model", "")), str(data.get("provider", "")))
        per_model.setdefault(key, []).append(data)
    shares = sorted(
        (
            ModelShare(
                model=model,
                provider=provider,
                requests=len(items),
                input_tokens=int(sum(number(d.get("inputTokens")) for d in items)),
                output_tokens=int(sum(number(d.get("outputTokens")) for d in items)),
                estimated_cost=round(sum(number(d.get("estimatedCost")) for d in items), 8),
                latency=latency([number(d.get("latencyMs")) for d in items]),
            )
            for (model, provider), items in per_model.items()
        ),
        key=lambda s: (-s.requests, s.model),
    )
    tool_errors = sum(
        1 for e in events if e.type == "tool_result" and parse_json(e.data, {}).get("error")
    )
    info = to_info(row)
    return SessionMetrics(
        input_tokens=sum(s.input_tokens for s in shares),
        output_tokens=sum(s.output_tokens for s in shares),
        estimated_cost=round(row.estimated_cost, 8),
        llm_calls=len(calls),
        latency=latency([number(d.get("latencyMs")) for d in calls]),
        tool_calls=sum(1 for e in events if e.type == "tool_call"),
        tool_errors=tool_errors,
        errors=row.error_count,
        turns=row.turn_count,
        messages=row.message_count,
        trace_events=row.trace_event_count,
        feedback_positive=feedback.get("positive", 0),
        feedback_negative=feedback.get("negative", 0),
        duration_ms=info.duration_ms,
        by_model=tuple(shares),
    )


def entry_agent(ids: Mapping[str, str], agents: Sequence[str], wanted: str) -> str:
    """The agent named by id, name, or a path whose last part is the name."""
    for name, agent_id in ids.items():
        if agent_id == wanted:
            return name
    name = wanted.rstrip("/").rsplit("/", 1)[-1]
    if name in agents:
        return name
    raise agent_not_found()


def check_metadata(metadata: Mapping[str, Any]) -> str:
    """The metadata as JSON, at most 16 KiB."""
    if not metadata:
        return ""
    text = json.dumps(metadata, separators=(",", ":"), default=str)
    if len(text) > MAX_METADATA_BYTES:
        raise InvalidArgument(
            f"Invalid request: metadata is too large (max {MAX_METADATA_BYTES} bytes as JSON)",
            field="metadata",
            reason="INVALID_METADATA",
        )
    return text


def to_attachment(row: SessionAttachment, path: Path) -> Attachment:
    return Attachment(
        id=row.id,
        session_id=row.session_id,
        filename=row.filename,
        mime_type=row.mime_type,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        created_at=row.created_at,
        path=path,
    )
