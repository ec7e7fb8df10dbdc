"""Sessions as people manage them: create, list, get, delete, reset, end; transcripts,
trace events, metrics, feedback, attachments, and a turn on an existing session
(`send`). The turn itself is TurnService's (turn.py); this is the read side around it.

Every method is scoped to a tenant: another tenant's project, session, message or
attachment is "not found".
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from chatplane.agents.service import AgentService
from chatplane.errors import InvalidArgument, NotFound
from chatplane.kit.clock import utcnow
from chatplane.kit.ids import cuid
from chatplane.projects.service import ProjectService
from chatplane.runtime import SessionState
from chatplane.sessions import feedback
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
from chatplane.sessions.turn import TurnService
from chatplane.sessions.types import (
    Attachment,
    FeedbackResult,
    Outcome,
    SessionInfo,
    SessionMetrics,
    SessionPage,
    SessionStatus,
    TracePage,
    TranscriptEntry,
    TurnRequest,
    TurnResult,
)
from chatplane.sessions.views import (
    check_metadata,
    entry_agent,
    page_bounds,
    session_metrics,
    session_not_found,
    to_attachment,
    to_entry,
    to_event,
    to_info,
)
from chatplane.storage.db import Database, UnitOfWork
from chatplane.storage.models import (
    AgentSession,
    SessionAttachment,
)

DEFAULT_TRACE_LIMIT = 500
MAX_TRACE_LIMIT = 1000
STATUSES = ("active", "ended")
MAX_ATTACHMENTS_PER_MESSAGE = 20


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
        entry = entry_agent(resolved.agent_ids, list(resolved.agents), wanted)
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
            state=SessionState.new(entry).dumps(),
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
                "state": SessionState.new(entry).dumps(),
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
        events = await TraceQueries(uow, tenant_id).of_types(
            row.id, ("llm_call", "tool_call", "tool_result")
        )
        feedback = await FeedbackRepository(uow, tenant_id).counts(row.id)
        return session_metrics(row, events, feedback)

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
        return await feedback.rate(
            self._db,
            tenant_id,
            rater,
            session_id=session_id,
            message_id=message_id,
            rating=rating,
            comment=comment,
        )

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
        upload = await asyncio.to_thread(
            parse_upload, content_type, body, max_bytes=self.max_attachment_bytes
        )
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
        return to_attachment(item, self.files.path(item.sha256))

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
        attachments = tuple(to_attachment(by_id[i], self.files.path(by_id[i].sha256)) for i in ids)
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
