"""Sessions as people manage them: create, list, get, delete, reset, end; transcripts,
trace events, metrics, feedback, attachments, and a turn on an existing session
(`send`). The turn itself is TurnService's (turn.py); this is the read side around it.

Every method is scoped to a tenant: another tenant's project, session, message or
attachment is "not found".
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from chatplane.agents.service import AgentService
from chatplane.errors import InvalidArgument, NotFound
from chatplane.kit.clock import utcnow
from chatplane.kit.ids import cuid
from chatplane.projects.service import ProjectService
from chatplane.runtime import SessionState
from chatplane.sessions.attachments import FileStore, parse_upload, sniff
from chatplane.sessions.repository import (
    AttachmentFiles,
    AttachmentRepository,
    FeedbackRepository,
    MessageQueries,
    SessionQueries,
    SessionRepository,
    TraceQueries,
)
from chatplane.sessions.turn import TurnService, public_state
from chatplane.sessions.types import (
    Attachment,
    FeedbackResult,
    Latency,
    ModelShare,
    Outcome,
    SessionInfo,
    SessionMetrics,
    SessionPage,
    SessionStatus,
    StoredTraceEvent,
    TracePage,
    TranscriptEntry,
    TurnRequest,
    TurnResult,
)
from chatplane.storage.db import Database, UnitOfWork
from chatplane.storage.models import (
    AgentSession,
    SessionAttachment,
    SessionFeedback,
    SessionMessage,
    TraceEventRecord,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
DEFAULT_TRACE_LIMIT = 500
MAX_TRACE_LIMIT = 1000
STATUSES = ("active", "ended")
RATINGS = ("positive", "negative")
MAX_COMMENT = 4000
MAX_ATTACHMENTS_PER_MESSAGE = 20
MAX_METADATA_BYTES = 16 * 1024


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


def _json(text: str, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _state(row: AgentSession) -> dict[str, Any]:
    data = _json(row.state, {})
    if not data:
        return {}
    try:
        return public_state(SessionState.from_json(data))
    except Exception:  # an unreadable state is shown empty rather than failing the read
        return {}


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
        metadata=_json(row.metadata_json, {}),
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


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _entry_agent(ids: Mapping[str, str], agents: Sequence[str], wanted: str) -> str:
    """The agent named by id, name, or a path whose last part is the name."""
    for name, agent_id in ids.items():
        if agent_id == wanted:
            return name
    name = wanted.rstrip("/").rsplit("/", 1)[-1]
    if name in agents:
        return name
    raise NotFound("Agent not found", reason="AGENT_NOT_FOUND")


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


class SessionService:
    def __init__(
        self,
        db: Database,
        *,
        agents: AgentService,
        projects: ProjectService,
        turns: TurnService,
        files: FileStore,
        max_attachment_bytes: int,
    ) -> None:
        self._db = db
        self._agents = agents
        self._projects = projects
        self._turns = turns
        self.files = files
        self.max_attachment_bytes = max_attachment_bytes

    # ---- sessions -------------------------------------------------------------------

    async def create(
        self,
        tenant_id: str,
        project_id: str,
        agent: str,
        *,
        channel: str = "api",
        created_by: str = "",
        user_id: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> SessionInfo:
        """An empty session whose first turn starts `agent` (id, name or path); it runs on
        the project's production deployment, else its newest active one, else a draft."""
        if not agent.strip():
            raise InvalidArgument("Invalid request: agentId is required", field="agentId")
        if not project_id:
            raise InvalidArgument("Invalid request: projectId is required", field="projectId")
        metadata_json = check_metadata(metadata or {})
        resolved = await self._agents.resolve(tenant_id, project_id)
        wanted = agent.strip()
        async with self._db.read() as uow:
            source = await SessionQueries(uow, tenant_id).agent_in_project(project_id, wanted)
        if source is not None:  # the project's agent by id or name (stable ids)
            wanted = source.name if source.name in resolved.agents else wanted
        entry = _entry_agent(resolved.agent_ids, list(resolved.agents), wanted)
        agent_id = resolved.agent_ids.get(entry, "")
        if resolved.deployment_id is None:  # a draft: the agent's own (stable) id
            async with self._db.read() as uow:
                own = await SessionQueries(uow, tenant_id).agent_in_project(project_id, entry)
            agent_id = own.id if own is not None else agent_id
        now = utcnow()
        row = AgentSession(
            id=f"sess_{cuid()}",
            runtime_session_id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            project_id=project_id,
            deployment_id=resolved.deployment_id,
            environment=resolved.environment,
            agent_id=agent_id,
            agent_name=entry,
            channel=channel,
            user_id=user_id[:128],
            state=json.dumps(SessionState.new(entry).to_json()),
            created_by=created_by,
            metadata_json=metadata_json,
            created_at=now,
            last_activity_at=now,
        )
        async with self._db.uow() as uow:
            SessionQueries(uow, tenant_id).add(row)
        return to_info(row)

    async def list_sessions(
        self,
        tenant_id: str,
        project_id: str,
        *,
        limit: int | None,
        offset: int,
        status: str = "",
        channel: str = "",
    ) -> SessionPage:
        size, skip = page_bounds(limit, offset)
        if status and status not in STATUSES:
            raise InvalidArgument(
                "Invalid request: status must be one of active, ended", field="status"
            )
        await self._projects.get(tenant_id, project_id)  # 404 across tenants
        async with self._db.read() as uow:
            rows, total = await SessionQueries(uow, tenant_id).filtered(
                project_id=project_id, status=status, channel=channel, limit=size, offset=skip
            )
        return SessionPage(tuple(to_info(r) for r in rows), total, size, skip)

    async def _row(
        self, uow: UnitOfWork, tenant_id: str, project_id: str | None, session_id: str
    ) -> AgentSession:
        queries = SessionQueries(uow, tenant_id)
        if project_id is None:
            row = await SessionRepository(uow, tenant_id).find(session_id)
        else:
            row = await queries.in_project(project_id, session_id)
        if row is None:
            raise session_not_found()
        return row

    async def get(self, tenant_id: str, project_id: str | None, session_id: str) -> SessionInfo:
        async with self._db.read() as uow:
            row = await self._row(uow, tenant_id, project_id, session_id)
        return to_info(row, with_state=True)

    async def delete(self, tenant_id: str, project_id: str | None, session_id: str) -> str:
        """Deletes the session, its messages, traces, feedback and attachments; then the
        attachment files no other attachment shares. Usage records stay."""
        async with self._db.uow() as uow:
            row = await self._row(uow, tenant_id, project_id, session_id)
            hashes = {
                a.sha256 for a in await AttachmentRepository(uow, tenant_id).of_session(row.id)
            }
            await SessionQueries(uow, tenant_id).delete_with_children(row.id)
        for digest in hashes:
            async with self._db.read() as uow:
                if await AttachmentFiles(uow).referenced(digest):
                    continue
            await self.files.remove(digest)
        return row.id

    async def reset(self, tenant_id: str, project_id: str, session_id: str) -> SessionInfo:
        """State back to the start at the entry agent; an ended session is active again.
        The transcript, traces, counters and attachments stay."""
        async with self._db.uow() as uow:
            row = await self._row(uow, tenant_id, project_id, session_id)
            entry = await self._entry_name(tenant_id, row)
            values: dict[str, Any] = {
                "state": json.dumps(SessionState.new(entry).to_json()),
                "agent_name": entry,
                "status": str(SessionStatus.ACTIVE),
                "outcome": str(Outcome.NONE),
                "end_reason": "",
                "ended_at": None,
                "last_activity_at": utcnow(),
            }
            if not await SessionQueries(uow, tenant_id).update(row.id, values):
                raise session_not_found()
        return await self.get(tenant_id, project_id, row.id)

    async def _entry_name(self, tenant_id: str, row: AgentSession) -> str:
        """The entry agent's name: the agent with the session's agent id in its programs."""
        try:
            if row.deployment_id:
                resolved = await self._agents.get_deployment_programs(tenant_id, row.deployment_id)
            else:
                resolved = await self._agents.resolve(tenant_id, row.project_id)
        except NotFound:
            return row.agent_name
        for name, agent_id in resolved.agent_ids.items():
            if agent_id == row.agent_id:
                return name
        return resolved.entry_agent or row.agent_name

    async def end(self, tenant_id: str, project_id: str, session_id: str) -> SessionInfo:
        async with self._db.uow() as uow:
            row = await self._row(uow, tenant_id, project_id, session_id)
            if row.status == SessionStatus.ACTIVE:
                now = utcnow()
                await SessionQueries(uow, tenant_id).update(
                    row.id,
                    {
                        "status": str(SessionStatus.ENDED),
                        "outcome": row.outcome or str(Outcome.DROP_OFF),
                        "end_reason": "ended",
                        "ended_at": now,
                    },
                )
        return await self.get(tenant_id, project_id, row.id)

    # ---- transcript, traces, metrics -----------------------------------------------

    async def transcript(
        self, tenant_id: str, session_id: str, *, project_id: str | None = None
    ) -> list[TranscriptEntry]:
        async with self._db.read() as uow:
            row = await self._row(uow, tenant_id, project_id, session_id)
            messages = await MessageQueries(uow, tenant_id).of_session(row.id)
        return [to_entry(m) for m in messages]

    async def traces(
        self,
        tenant_id: str,
        project_id: str,
        session_id: str,
        *,
        event_type: str = "",
        decision_kind: str = "",
        span_id: str = "",
        include: str = "",
        limit: int | None = None,
        offset: int = 0,
    ) -> TracePage:
        size, skip = page_bounds(limit, offset, default=DEFAULT_TRACE_LIMIT, most=MAX_TRACE_LIMIT)
        wanted = {part.strip() for part in include.split(",") if part.strip()}
        if wanted - {"metrics"}:
            raise InvalidArgument("Invalid request: include may only be `metrics`", field="include")
        async with self._db.read() as uow:
            row = await self._row(uow, tenant_id, project_id, session_id)
            rows, total = await TraceQueries(uow, tenant_id).filtered(
                row.id,
                event_type=event_type,
                decision_kind=decision_kind,
                span_id=span_id,
                limit=size,
                offset=skip,
            )
            metrics = await self._metrics(uow, tenant_id, row) if wanted else None
        return TracePage(row.id, tuple(to_event(r) for r in rows), total, metrics)

    async def metrics(self, tenant_id: str, project_id: str, session_id: str) -> SessionMetrics:
        async with self._db.read() as uow:
            row = await self._row(uow, tenant_id, project_id, session_id)
            return await self._metrics(uow, tenant_id, row)

    async def _metrics(self, uow: UnitOfWork, tenant_id: str, row: AgentSession) -> SessionMetrics:
        """From the session's counters, its `llm_call` / `tool_call` / `tool_result` trace
        events (model, tokens, cost, latency per call) and its feedback."""
        events = await TraceQueries(uow, tenant_id).of_types(
            row.id, ("llm_call", "tool_call", "tool_result")
        )
        feedback = await FeedbackRepository(uow, tenant_id).counts(row.id)
        calls = [_json(e.data, {}) for e in events if e.type == "llm_call"]
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
                    input_tokens=int(sum(_number(d.get("inputTokens")) for d in items)),
                    output_tokens=int(sum(_number(d.get("outputTokens")) for d in items)),
                    estimated_cost=round(sum(_number(d.get("estimatedCost")) for d in items), 8),
                    latency=latency([_number(d.get("latencyMs")) for d in items]),
                )
                for (model, provider), items in per_model.items()
            ),
            key=lambda s: (-s.requests, s.model),
        )
        tool_errors = sum(
            1 for e in events if e.type == "tool_result" and _json(e.data, {}).get("error")
        )
        info = to_info(row)
        return SessionMetrics(
            input_tokens=sum(s.input_tokens for s in shares),
            output_tokens=sum(s.output_tokens for s in shares),
            estimated_cost=round(row.estimated_cost, 8),
            llm_calls=len(calls),
            latency=latency([_number(d.get("latencyMs")) for d in calls]),
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

    # ---- feedback --------------------------------------------------------------------

    async def feedback(
        self,
        tenant_id: str,
        rater: str,
        *,
        session_id: str,
        message_id: str,
        rating: str,
        comment: str,
    ) -> FeedbackResult:
        """One rating per message per rater: a second one replaces the first."""
        if not session_id:
            raise InvalidArgument("Invalid request: sessionId is required", field="sessionId")
        if rating not in RATINGS:
            raise InvalidArgument(
                "Invalid request: rating must be positive or negative", field="rating"
            )
        if len(comment) > MAX_COMMENT:
            raise InvalidArgument(
                f"Invalid request: comment is too long (max {MAX_COMMENT})", field="comment"
            )
        for attempt in range(2):
            try:
                return await self._store_feedback(
                    tenant_id,
                    rater,
                    session_id=session_id,
                    message_id=message_id,
                    rating=rating,
                    comment=comment,
                )
            except IntegrityError:  # two first ratings at once: the other one won, replace it
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _store_feedback(
        self,
        tenant_id: str,
        rater: str,
        *,
        session_id: str,
        message_id: str,
        rating: str,
        comment: str,
    ) -> FeedbackResult:
        async with self._db.uow() as uow:
            row = await self._row(uow, tenant_id, None, session_id)
            if (
                message_id
                and await MessageQueries(uow, tenant_id).in_session(row.id, message_id) is None
            ):
                raise NotFound("Message not found", reason="MESSAGE_NOT_FOUND", field="messageId")
            repo = FeedbackRepository(uow, tenant_id)
            existing = await repo.of_rater(row.id, message_id, rater)
            if existing is not None:
                existing.rating = rating
                existing.comment = comment
                existing.updated_at = utcnow()
                uow.add(existing)
                return FeedbackResult(existing.id, replaced=True)
            item = SessionFeedback(
                id=f"fb_{cuid()}",
                tenant_id=tenant_id,
                session_id=row.id,
                message_id=message_id,
                rater=rater,
                rating=rating,
                comment=comment,
            )
            repo.add(item)
            await uow.flush()
            return FeedbackResult(item.id, replaced=False)

    # ---- attachments and send ---------------------------------------------------------

    async def upload(
        self,
        tenant_id: str,
        project_id: str,
        session_id: str,
        *,
        content_type: str,
        body: bytes,
    ) -> Attachment:
        async with self._db.read() as uow:
            row = await self._row(uow, tenant_id, project_id, session_id)
        upload = parse_upload(content_type, body, max_bytes=self.max_attachment_bytes)
        digest = await self.files.put(upload.data)
        item = SessionAttachment(
            id=f"att_{cuid()}",
            tenant_id=tenant_id,
            session_id=row.id,
            filename=upload.filename,
            mime_type=sniff(upload.data),
            size_bytes=len(upload.data),
            sha256=digest,
        )
        async with self._db.uow() as uow:
            if await SessionQueries(uow, tenant_id).get(row.id) is None:  # deleted meanwhile
                raise session_not_found()
            AttachmentRepository(uow, tenant_id).add(item)
        return self._attachment(item)

    def _attachment(self, row: SessionAttachment) -> Attachment:
        return Attachment(
            id=row.id,
            session_id=row.session_id,
            filename=row.filename,
            mime_type=row.mime_type,
            size_bytes=row.size_bytes,
            sha256=row.sha256,
            created_at=row.created_at,
            path=self.files.path(row.sha256),
        )

    async def send(
        self,
        tenant_id: str,
        scopes: frozenset[str],
        *,
        session_id: str,
        message: str,
        attachment_ids: Sequence[str] = (),
        project_id: str | None = None,
    ) -> TurnResult:
        """A turn on an existing session, with attachments uploaded to it."""
        if not session_id:
            raise InvalidArgument("Invalid request: sessionId is required", field="sessionId")
        ids = list(dict.fromkeys(attachment_ids))
        if len(ids) > MAX_ATTACHMENTS_PER_MESSAGE:
            raise InvalidArgument(
                f"Invalid request: at most {MAX_ATTACHMENTS_PER_MESSAGE} attachmentIds",
                field="attachmentIds",
            )
        async with self._db.read() as uow:
            row = await self._row(uow, tenant_id, project_id, session_id)
            found = await AttachmentRepository(uow, tenant_id).by_ids(row.id, ids) if ids else []
        if len(found) != len(ids):
            missing = sorted(set(ids) - {a.id for a in found})
            raise NotFound(
                "Attachment not found",
                reason="ATTACHMENT_NOT_FOUND",
                field="attachmentIds",
                metadata={"attachment_ids": " ".join(missing)[:200]},
            )
        by_id = {a.id: a for a in found}
        attachments = tuple(self._attachment(by_id[i]) for i in ids)
        return await self._turns.run(
            tenant_id,
            scopes,
            TurnRequest(
                project_id=row.project_id,
                message=message,
                session_id=row.id,
                metadata={"attachmentIds": ids} if ids else {},
                attachments=attachments,
            ),
        )

    async def last_reply(self, tenant_id: str, session_id: str) -> TranscriptEntry | None:
        async with self._db.read() as uow:
            found = await MessageQueries(uow, tenant_id).last(session_id, "assistant")
        return to_entry(found) if found is not None else None


def to_entry(row: SessionMessage) -> TranscriptEntry:
    return TranscriptEntry(row.id, row.role, row.content, row.created_at)


def to_event(row: TraceEventRecord) -> StoredTraceEvent:
    data = _json(row.data, {})
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
