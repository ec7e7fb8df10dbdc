"""One agent turn: pick the deployment and session, run the runtime, store the result.

A turn is atomic: the user message, the reply, the new state, the trace events, the usage
records and the session's counters are written in one transaction after the runtime has
finished, or not at all (a failed or killed turn leaves the session as it was). Turns on
one session are serialized (see locks.py); the final write is also guarded by the
session's version.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from chatplane.agents.service import AgentService
from chatplane.agents.types import Resolved
from chatplane.chat.service import ChatService
from chatplane.errors import (
    FailedPrecondition,
    Gone,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
)
from chatplane.iam import scopes as scope_names
from chatplane.kit.admission import InflightLimiter
from chatplane.kit.cache import TtlCache
from chatplane.kit.clock import utcnow
from chatplane.kit.ids import cuid
from chatplane.lang import ir
from chatplane.observability import metrics, tracing
from chatplane.ratelimit import RateLimiter, admit
from chatplane.runtime import Limits, SessionState, TurnInput, TurnOutcome, run_turn
from chatplane.sessions import record
from chatplane.sessions.host import Listener, TurnHost
from chatplane.sessions.http_tools import HttpTools
from chatplane.sessions.locks import TurnLocks
from chatplane.sessions.repository import BulkInserts, DeploymentSessions, SessionRepository
from chatplane.sessions.types import SessionStatus, TimedEvent, TurnRequest, TurnResult
from chatplane.sessions.views import (
    MAX_METADATA_BYTES,
    entry_agent,
    public_state,
    session_not_found,
)
from chatplane.storage.db import Database, UnitOfWork
from chatplane.storage.models import (
    AgentSession,
    LlmCallPayload,
    SessionMessage,
    TaskExecution,
    TraceEventRecord,
    UsageRecord,
)

MAX_MESSAGE_CHARS = 32_000
MAX_METADATA_DEPTH = 8
MAX_TOOL_MOCKS = 50
ENVIRONMENTS = ("dev", "staging", "production")


def _depth(value: Any, level: int = 1) -> int:
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level - 1


def validate_turn(request: TurnRequest, scopes: frozenset[str]) -> None:
    """The documented limits; errors name the field (wire names)."""
    if not request.project_id:
        raise InvalidArgument("Invalid request: projectId is required", field="projectId")
    if not request.message.strip():
        raise InvalidArgument(
            "Invalid request: message must be at least 1 character", field="message"
        )
    if len(request.message) > MAX_MESSAGE_CHARS:
        raise InvalidArgument(
            f"Invalid request: message is too long (max {MAX_MESSAGE_CHARS})", field="message"
        )
    if request.environment and request.environment not in ENVIRONMENTS:
        raise InvalidArgument(
            "Invalid request: environment must be one of dev, staging, production",
            field="environment",
        )
    if request.metadata:
        size = len(json.dumps(request.metadata, separators=(",", ":")))
        if size > MAX_METADATA_BYTES or _depth(request.metadata) > MAX_METADATA_DEPTH:
            raise InvalidArgument(
                "Invalid message metadata", field="metadata", reason="INVALID_METADATA"
            )
    if request.test is not None:
        if scope_names.PROJECT_WRITE not in scopes:
            raise PermissionDenied(
                f"testContext requires the {scope_names.PROJECT_WRITE} scope",
                reason="MISSING_SCOPE",
            )
        if len(request.test.tool_mocks) > MAX_TOOL_MOCKS:
            raise InvalidArgument(
                f"Invalid request: testContext.toolMocks has at most {MAX_TOOL_MOCKS} entries",
                field="testContext.toolMocks",
            )


def _user_id(request: TurnRequest) -> str:
    caller = request.test.caller_context if request.test else {}
    return str(caller.get("userId", ""))[:128]


class TurnService:
    def __init__(
        self,
        db: Database,
        *,
        agents: AgentService,
        chats: ChatService,
        limiter: RateLimiter,
        session_limiter: RateLimiter | None,
        tools: HttpTools,
        queue: InflightLimiter,
        max_active_sessions: int,
        limits: Limits | None = None,
        payload_max_bytes: int | None = None,
    ) -> None:
        self._db = db
        self._agents = agents
        self._chats = chats
        self._limiter = limiter
        self._session_limiter = session_limiter
        self._tools = tools
        self._queue = queue
        self._max_active = max_active_sessions
        self._limits = limits or Limits()
        self._payload_max_bytes = payload_max_bytes  # None: model payloads are not kept
        self._locks = TurnLocks(db)
        # Resolved deployments of resumed sessions; a retirement shows within the TTL.
        self._deployments: TtlCache[tuple[str, str], Resolved] = TtlCache(5.0)

    async def active_on(self, deployment_id: str) -> int:
        """Active sessions on a deployment: a draining deployment retires at 0."""
        async with self._db.read() as uow:
            return await DeploymentSessions(uow).active_on(deployment_id)

    async def run(
        self,
        tenant_id: str,
        scopes: frozenset[str],
        request: TurnRequest,
        *,
        listener: Listener | None = None,
    ) -> TurnResult:
        validate_turn(request, scopes)
        started = time.perf_counter()
        action = "none"
        with tracing.turn_span(request.project_id):  # nothing when tracing is off
            try:
                async with self._queue:
                    if request.session_id:
                        result = await self._resume(tenant_id, request, listener)
                    else:
                        result = await self._start(tenant_id, request, listener)
                action = result.action.type
                return result
            finally:
                outcome = "ok" if action != "none" else "error"
                tracing.annotate(action=action, outcome=outcome)
                metrics.observe_turn(action, time.perf_counter() - started, outcome=outcome)

    def _host(
        self,
        tenant_id: str,
        project_id: str,
        session_id: str,
        listener: Listener | None,
        request: TurnRequest,
    ) -> TurnHost:
        return TurnHost(
            payload_max_bytes=self._payload_max_bytes,
            user_message=request.message,
            attachments=request.attachments,
            chats=self._chats,
            limiter=self._limiter,
            tools=self._tools,
            tenant_id=tenant_id,
            project_id=project_id,
            session_id=session_id,
            listener=listener,
        )

    def _input(self, request: TurnRequest) -> TurnInput:
        return TurnInput(
            message=request.message, metadata=dict(request.metadata), test=request.test
        )

    async def _start(
        self, tenant_id: str, request: TurnRequest, listener: Listener | None
    ) -> TurnResult:
        resolved = await self._agents.resolve(
            tenant_id,
            request.project_id,
            deployment_id=request.deployment_id,
            environment=request.environment,
            draft=request.draft,
        )
        entry = (
            entry_agent(resolved.agent_ids, list(resolved.agents), request.agent_id)
            if request.agent_id
            else resolved.entry_agent
        )
        if self._max_active > 0:
            async with self._db.read() as uow:
                active = await SessionRepository(uow, tenant_id).count_active()
            if active >= self._max_active:
                raise ResourceExhausted(
                    "Concurrent session limit exceeded",
                    reason="CONCURRENT_SESSION_LIMIT",
                    retry_after=60,
                )
        session_id = f"sess_{cuid()}"
        tracing.annotate(session_id=session_id, agent=entry)
        host = self._host(tenant_id, request.project_id, session_id, listener, request)
        started = time.time()
        outcome = await run_turn(
            resolved.agents, None, self._input(request), host, entry=entry, limits=self._limits
        )
        tracing.record_turn_events(outcome.events, int(started * 1e9), time.time_ns())
        row = AgentSession(
            id=session_id,
            runtime_session_id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            project_id=request.project_id,
            deployment_id=resolved.deployment_id,
            environment=resolved.environment,
            agent_id=resolved.agent_ids.get(entry, ""),
            agent_name=entry,
            channel=request.channel,
            user_id=_user_id(request),
            is_developer=request.test is not None or request.channel == "test",
        )
        async with self._db.uow() as uow:
            SessionRepository(uow, tenant_id).add(row)
            await uow.flush()
            return await self._store(
                uow,
                tenant_id=tenant_id,
                row=row,
                request=request,
                outcome=outcome,
                host=host,
                started=started,
            )

    async def _resume(
        self, tenant_id: str, request: TurnRequest, listener: Listener | None
    ) -> TurnResult:
        mark = self._locks.mark()
        async with self._db.read() as uow:
            found = await SessionRepository(uow, tenant_id).find(request.session_id)
        if found is None or found.project_id != request.project_id:
            raise session_not_found()
        if self._session_limiter is not None:
            await admit(
                self._session_limiter,
                f"session:{tenant_id}:{found.id}",
                message="Session message rate limit exceeded",
                reason="SESSION_RATE_LIMIT_EXCEEDED",
            )
        async with self._locks.hold(found.id, since=mark) as changed:
            row: AgentSession | None = found
            if changed:  # read it again, now that the turn is ours
                async with self._db.read() as uow:
                    row = await SessionRepository(uow, tenant_id).get(found.id)
            if row is None:
                raise session_not_found()
            if row.status != SessionStatus.ACTIVE:
                raise FailedPrecondition("Session has ended", reason="SESSION_ENDED")
            programs = await self._programs(tenant_id, row)
            host = self._host(tenant_id, row.project_id, row.id, listener, request)
            started = time.time()
            state = SessionState.loads(row.state)
            tracing.annotate(session_id=row.id, agent=state.agent)
            outcome = await run_turn(
                programs, state, self._input(request), host, entry=state.agent, limits=self._limits
            )
            tracing.record_turn_events(outcome.events, int(started * 1e9), time.time_ns())
            async with self._db.uow() as uow:
                return await self._store(
                    uow,
                    tenant_id=tenant_id,
                    row=row,
                    request=request,
                    outcome=outcome,
                    host=host,
                    started=started,
                )

    async def _programs(self, tenant_id: str, row: AgentSession) -> Mapping[str, ir.Program]:
        """A session stays on the deployment it started on (while it is active or
        draining); a draft session follows the project's current sources. A deployment's
        programs never change and its status is re-read at most every few seconds."""
        if row.deployment_id is None:
            return (await self._agents.resolve(tenant_id, row.project_id)).agents
        key = (tenant_id, row.deployment_id)
        resolved = self._deployments.get(key)
        if resolved is None:
            resolved = await self._agents.get_deployment_programs(tenant_id, row.deployment_id)
            self._deployments.put(key, resolved)
        if resolved.status == "retired":
            raise Gone("Deployment is retired", reason="DEPLOYMENT_RETIRED")
        return resolved.agents

    async def _store(
        self,
        uow: UnitOfWork,
        *,
        tenant_id: str,
        row: AgentSession,
        request: TurnRequest,
        outcome: TurnOutcome,
        host: TurnHost,
        started: float,
    ) -> TurnResult:
        now = utcnow()
        origin = datetime.fromtimestamp(started, UTC)
        timed = [
            TimedEvent(e, origin + timedelta(milliseconds=e.started_ms)) for e in outcome.events
        ]
        messages = record.message_rows(tenant_id, row, request, outcome.reply, now)
        traces = record.trace_rows(tenant_id, row, timed)
        values = record.session_values(
            row,
            outcome,
            messages=len(messages),
            traces=len(traces),
            usage=host.usage_rows,
            tags=record.merged_tags(row.tags, request.metadata),
            now=now,
        )
        # The agent that ran this turn's task (a handoff changes the session's agent).
        agent = row.agent_name
        if not await SessionRepository(uow, tenant_id).update_if_version(
            row.id, row.version, values
        ):
            raise FailedPrecondition(
                "Session busy: another turn changed it; try again", reason="SESSION_BUSY"
            )
        inserts = BulkInserts(uow)
        await inserts.add(SessionMessage, messages)
        await inserts.add(TraceEventRecord, traces)
        await inserts.add(TaskExecution, record.task_rows(tenant_id, row, outcome, agent, now))
        await inserts.add(UsageRecord, host.usage_rows)
        await inserts.add(LlmCallPayload, host.payload_rows)
        return TurnResult(
            session_id=row.id,
            message_ids=tuple(m["id"] for m in messages),
            stored_at=now,
            response=outcome.reply,
            action=outcome.action,
            state=public_state(outcome.state),
            events=tuple(timed),
            rich_content=outcome.rich_content,
            actions=outcome.actions,
        )
