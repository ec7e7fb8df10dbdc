"""What a turn leaves behind, as plain rows: transcript messages, trace events, task
executions, the session's new counters and tags. Pure functions; the turn inserts the
rows in bulk in its one transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chatplane.kit.ids import cuid
from chatplane.runtime import TurnOutcome
from chatplane.sessions.types import Outcome, SessionStatus, TimedEvent, TurnRequest
from chatplane.storage.models import AgentSession
from chatplane.usage.types import UsageRow

Row = dict[str, Any]
TAG_KINDS = ("userTags", "sessionTags")


def message_rows(
    tenant_id: str, session: AgentSession, request: TurnRequest, reply: str, now: datetime
) -> list[Row]:
    rows = [
        {
            "id": f"msg_{cuid()}",
            "tenant_id": tenant_id,
            "session_id": session.id,
            "seq": session.message_count + 1,
            "role": "user",
            "content": request.message,
            "metadata_json": json.dumps(request.metadata) if request.metadata else "",
            "created_at": now,
        }
    ]
    if reply:
        rows.append(
            {
                "id": f"msg_{cuid()}",
                "tenant_id": tenant_id,
                "session_id": session.id,
                "seq": session.message_count + 2,
                "role": "assistant",
                "content": reply,
                "metadata_json": "",
                "created_at": now,
            }
        )
    return rows


def trace_rows(tenant_id: str, session: AgentSession, timed: Sequence[TimedEvent]) -> list[Row]:
    return [
        {
            "id": f"evt_{cuid()}",
            "tenant_id": tenant_id,
            "session_id": session.id,
            "seq": session.trace_event_count + i + 1,
            "turn": session.turn_count + 1,
            "type": t.event.type,
            "decision_kind": t.event.decision_kind or "",
            "span_id": t.event.span_id,
            "parent_span_id": t.event.parent_span_id or "",
            "started_at": t.started_at,
            "duration_ms": t.event.duration_ms,
            "data": json.dumps(t.event.data, default=str),
        }
        for i, t in enumerate(timed)
    ]


def tag_list(value: Any) -> list[dict[str, str]]:
    """Tags as `[{name, value}]`, from `{name: value}`, `[{name, value}]` or strings
    `"name"` / `"name=value"` (the stored form the analytics routes read back too)."""
    if isinstance(value, dict):
        value = [{"name": k, "value": v} for k, v in value.items()]
    out: list[dict[str, str]] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict) and "name" in item:
            out.append({"name": str(item["name"]), "value": str(item.get("value", ""))})
        elif isinstance(item, str):
            name, _, val = item.partition("=")
            out.append({"name": name, "value": val})
    return out


def merged_tags(current: str, metadata: dict[str, Any]) -> str | None:
    """The session's tags with this turn's `metadata.userTags` / `metadata.sessionTags`
    merged in (a name set again takes the new value); None when the turn adds none."""
    if not any(kind in metadata for kind in TAG_KINDS):
        return None
    try:
        loaded = json.loads(current or "{}")
    except ValueError:
        loaded = {}
    if isinstance(loaded, list):  # an older plain list: session tags
        loaded = {"sessionTags": tag_list(loaded)}
    tags: dict[str, Any] = {"userTags": [], "sessionTags": [], "altText": []}
    tags.update({k: v for k, v in loaded.items() if k in tags})
    for kind in TAG_KINDS:
        if kind in metadata:
            merged = {t["name"]: t for t in tags[kind]}
            merged.update({t["name"]: t for t in tag_list(metadata[kind])})
            tags[kind] = list(merged.values())
    return json.dumps(tags)


def task_rows(
    tenant_id: str, session: AgentSession, outcome: TurnOutcome, agent: str, now: datetime
) -> list[Row]:
    """A flow run that ended this turn: success on COMPLETE or a handoff onward, failure
    (`failtask`) on ESCALATE or an error the agent did not recover from."""
    kind = outcome.action.type
    if kind in ("complete", "handoff"):
        status = "success"
    elif kind == "escalate" or (outcome.error_count and not outcome.reply):
        status = "failtask"
    else:
        return []
    return [
        {
            "id": f"tex_{cuid()}",
            "tenant_id": tenant_id,
            "project_id": session.project_id,
            "session_id": session.id,
            "agent_name": agent,
            "task_name": agent,
            "task_type": "dialog",
            "status": status,
            "created_at": now,
        }
    ]


def session_values(
    session: AgentSession,
    outcome: TurnOutcome,
    *,
    messages: int,
    traces: int,
    usage: Sequence[UsageRow],
    tags: str | None,
    now: datetime,
) -> Row:
    """The session row's new values: state, counters, status and outcome."""
    status, ending = SessionStatus.ACTIVE, Outcome.NONE
    if outcome.action.type == "complete":
        status, ending = SessionStatus.ENDED, Outcome.SELF_SERVICE
    elif outcome.action.type == "escalate":
        status, ending = SessionStatus.ENDED, Outcome.AGENT
    values: Row = {
        "state": outcome.state.dumps(),
        "agent_name": outcome.state.agent,
        "turn_count": session.turn_count + 1,
        "message_count": session.message_count + messages,
        "trace_event_count": session.trace_event_count + traces,
        "token_count": session.token_count
        + sum(r["input_tokens"] + r["output_tokens"] for r in usage),
        "estimated_cost": round(session.estimated_cost + sum(r["cost"] or 0.0 for r in usage), 8),
        "error_count": session.error_count + outcome.error_count,
        "last_activity_at": now,
        "status": str(status),
        "outcome": str(ending),
    }
    if tags is not None:
        values["tags"] = tags
    if status == SessionStatus.ENDED:
        values["ended_at"] = now
        values["end_reason"] = outcome.action.type
    return values
