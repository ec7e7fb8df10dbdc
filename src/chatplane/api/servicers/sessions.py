"""chatplane.session.v1.SessionService: converts protobuf <-> session domain types."""

from __future__ import annotations

from typing import Any

import grpc

from chatplane.api import agent_wire, call
from chatplane.chat.v1 import chat_service_pb2 as chat_pb
from chatplane.iam import scopes
from chatplane.kit.clock import iso
from chatplane.session.v1 import session_service_pb2 as pb
from chatplane.session.v1 import session_service_pb2_grpc as pb_grpc
from chatplane.sessions.service import SessionService
from chatplane.sessions.types import (
    Latency,
    SessionInfo,
    SessionMetrics,
    StoredTraceEvent,
    TranscriptEntry,
)

_SERVICE = "/chatplane.session.v1.SessionService/"
SCOPES = {
    _SERVICE + "CreateSession": scopes.SESSION_EXECUTE,
    _SERVICE + "ListSessions": scopes.SESSION_READ,
    _SERVICE + "GetSession": scopes.SESSION_READ,
    _SERVICE + "DeleteSession": scopes.SESSION_EXECUTE,
    _SERVICE + "ResetSession": scopes.SESSION_EXECUTE,
    _SERVICE + "EndSession": scopes.SESSION_EXECUTE,
    _SERVICE + "ListSessionTraces": scopes.SESSION_READ,
    _SERVICE + "GetSessionMetrics": scopes.SESSION_READ,
    _SERVICE + "UploadAttachment": scopes.SESSION_EXECUTE,
    _SERVICE + "GetTranscript": scopes.SESSION_READ,
    _SERVICE + "SubmitFeedback": scopes.SESSION_EXECUTE,
    _SERVICE + "SendMessage": scopes.SESSION_EXECUTE,
}

Context = grpc.aio.ServicerContext[Any, Any]


def to_session(info: SessionInfo) -> pb.Session:
    return pb.Session(
        id=info.id,
        runtime_session_id=info.runtime_session_id,
        agent_name=info.agent_name,
        status=info.status,
        channel=info.channel,
        message_count=info.message_count,
        trace_event_count=info.trace_event_count,
        token_count=info.token_count,
        estimated_cost=round(info.estimated_cost, 8),
        error_count=info.error_count,
        duration_ms=info.duration_ms,
        created_at=iso(info.created_at),
        last_activity_at=iso(info.last_activity_at),
        agent_id=info.agent_id,
        project_id=info.project_id,
        deployment_id=info.deployment_id,
        environment=info.environment,
        user_id=info.user_id,
        outcome=info.outcome,
        end_reason=info.end_reason,
        turn_count=info.turn_count,
        ended_at=iso(info.ended_at),
    )


def _latency(value: Latency) -> pb.LatencyStats:
    return pb.LatencyStats(
        avg_ms=value.avg_ms,
        p50_ms=value.p50_ms,
        p95_ms=value.p95_ms,
        p99_ms=value.p99_ms,
        max_ms=value.max_ms,
    )


def _tokens(input_tokens: int, output_tokens: int) -> pb.TokenCounts:
    return pb.TokenCounts(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )


def to_metrics(m: SessionMetrics) -> pb.SessionMetrics:
    return pb.SessionMetrics(
        tokens=_tokens(m.input_tokens, m.output_tokens),
        estimated_cost=m.estimated_cost,
        llm_calls=m.llm_calls,
        latency=_latency(m.latency),
        tool_calls=m.tool_calls,
        tool_errors=m.tool_errors,
        errors=m.errors,
        turns=m.turns,
        messages=m.messages,
        trace_events=m.trace_events,
        feedback=pb.FeedbackCounts(
            positive=m.feedback_positive,
            negative=m.feedback_negative,
            total=m.feedback_positive + m.feedback_negative,
        ),
        by_model=[
            pb.ModelMetrics(
                model=s.model,
                provider=s.provider,
                requests=s.requests,
                tokens=_tokens(s.input_tokens, s.output_tokens),
                estimated_cost=s.estimated_cost,
                latency=_latency(s.latency),
            )
            for s in m.by_model
        ],
        duration_ms=m.duration_ms,
    )


def to_event(e: StoredTraceEvent) -> pb.SessionTraceEvent:
    return pb.SessionTraceEvent(
        id=e.id,
        type=e.type,
        decision_kind=e.decision_kind,
        span_id=e.span_id,
        parent_span_id=e.parent_span_id,
        timestamp=iso(e.started_at),
        duration_ms=e.duration_ms,
        turn=e.turn,
        seq=e.seq,
        data=agent_wire.to_struct(e.data),
    )


def to_message(m: TranscriptEntry) -> pb.TranscriptMessage:
    return pb.TranscriptMessage(
        id=m.id, role=m.role, content=m.content, timestamp=iso(m.created_at)
    )


def _limit(request: Any) -> int | None:
    return int(request.limit) if request.HasField("limit") else None


class SessionServicer(pb_grpc.SessionServiceServicer):
    def __init__(self, sessions: SessionService) -> None:
        self._sessions = sessions

    async def CreateSession(
        self, request: pb.CreateSessionRequest, context: Context
    ) -> pb.CreateSessionResponse:
        principal = call.principal()
        info = await self._sessions.create(
            principal.tenant_id, request.project_id, request.agent, created_by=principal.subject
        )
        return pb.CreateSessionResponse(
            success=True,
            session=pb.CreatedSession(
                id=info.id,
                agent_id=info.agent_id,
                agent_name=info.agent_name,
                created_at=iso(info.created_at),
            ),
        )

    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: Context
    ) -> pb.ListSessionsResponse:
        page = await self._sessions.list_sessions(
            call.principal().tenant_id,
            request.project_id,
            limit=_limit(request),
            offset=request.offset,
            status=request.status,
            channel=request.channel,
        )
        return pb.ListSessionsResponse(
            success=True,
            total=page.total,
            offset=page.offset,
            limit=page.limit,
            sessions=[to_session(s) for s in page.sessions],
        )

    async def GetSession(
        self, request: pb.GetSessionRequest, context: Context
    ) -> pb.GetSessionResponse:
        info = await self._sessions.get(
            call.principal().tenant_id, request.project_id, request.session_id
        )
        return pb.GetSessionResponse(
            success=True, session=to_session(info), state=agent_wire.to_struct(info.state)
        )

    async def DeleteSession(
        self, request: pb.DeleteSessionRequest, context: Context
    ) -> pb.DeleteSessionResponse:
        deleted = await self._sessions.delete(
            call.principal().tenant_id, request.project_id, request.session_id
        )
        return pb.DeleteSessionResponse(success=True, id=deleted)

    async def ResetSession(
        self, request: pb.ResetSessionRequest, context: Context
    ) -> pb.ResetSessionResponse:
        info = await self._sessions.reset(
            call.principal().tenant_id, request.project_id, request.session_id
        )
        return pb.ResetSessionResponse(success=True, session=to_session(info))

    async def EndSession(
        self, request: pb.EndSessionRequest, context: Context
    ) -> pb.EndSessionResponse:
        info = await self._sessions.end(
            call.principal().tenant_id, request.project_id, request.session_id
        )
        return pb.EndSessionResponse(success=True, session=to_session(info))

    async def ListSessionTraces(
        self, request: pb.ListSessionTracesRequest, context: Context
    ) -> pb.ListSessionTracesResponse:
        page = await self._sessions.traces(
            call.principal().tenant_id,
            request.project_id,
            request.session_id,
            event_type=request.event_type,
            decision_kind=request.decision_kind,
            span_id=request.span_id,
            include=request.include,
            limit=_limit(request),
            offset=request.offset,
        )
        response = pb.ListSessionTracesResponse(
            success=True,
            session_id=page.session_id,
            total=page.total,
            traces=[to_event(e) for e in page.events],
        )
        if page.metrics is not None:
            response.metrics.CopyFrom(to_metrics(page.metrics))
        return response

    async def GetSessionMetrics(
        self, request: pb.GetSessionMetricsRequest, context: Context
    ) -> pb.GetSessionMetricsResponse:
        tenant_id = call.principal().tenant_id
        info = await self._sessions.get(tenant_id, request.project_id, request.session_id)
        metrics = await self._sessions.metrics(tenant_id, request.project_id, info.id)
        return pb.GetSessionMetricsResponse(
            success=True, session_id=info.id, metrics=to_metrics(metrics)
        )

    async def UploadAttachment(
        self, request: pb.UploadAttachmentRequest, context: Context
    ) -> pb.UploadAttachmentResponse:
        item = await self._sessions.upload(
            call.principal().tenant_id,
            request.project_id,
            request.session_id,
            content_type=request.file.content_type,
            body=request.file.data,
        )
        return pb.UploadAttachmentResponse(
            success=True,
            attachment_id=item.id,
            filename=item.filename,
            mime_type=item.mime_type,
            size_bytes=item.size_bytes,
        )

    async def GetTranscript(
        self, request: pb.GetTranscriptRequest, context: Context
    ) -> pb.GetTranscriptResponse:
        messages = await self._sessions.transcript(call.principal().tenant_id, request.session_id)
        return pb.GetTranscriptResponse(success=True, messages=[to_message(m) for m in messages])

    async def SubmitFeedback(
        self, request: pb.SubmitFeedbackRequest, context: Context
    ) -> pb.SubmitFeedbackResponse:
        principal = call.principal()
        result = await self._sessions.feedback(
            principal.tenant_id,
            principal.subject,
            session_id=request.session_id,
            message_id=request.message_id,
            rating=request.rating,
            comment=request.comment,
        )
        return pb.SubmitFeedbackResponse(
            success=True, feedback_id=result.id, replaced=result.replaced
        )

    async def SendMessage(
        self, request: pb.SendMessageRequest, context: Context
    ) -> chat_pb.ChatAgentResponse:
        principal = call.principal()
        result = await self._sessions.send(
            principal.tenant_id,
            principal.scopes,
            session_id=request.session_id,
            message=request.message,
            attachment_ids=list(request.attachment_ids),
        )
        return agent_wire.to_response(result)
