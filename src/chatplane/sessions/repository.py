"""Sessions, their messages and trace events in storage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel, col, func, or_, select

from chatplane.storage.models import (
    Agent,
    AgentSession,
    SessionAttachment,
    SessionFeedback,
    SessionMessage,
    TraceEventRecord,
)
from chatplane.storage.repository import Repository, TenantScopedRepository

# The statements every turn runs, built once with bound parameters: building them per
# call (and computing their cache keys) cost more than executing them.
_FIND = select(AgentSession).where(
    col(AgentSession.tenant_id) == sa.bindparam("tenant"),
    or_(
        col(AgentSession.id) == sa.bindparam("sid"),
        col(AgentSession.runtime_session_id) == sa.bindparam("sid"),
    ),
)
_updates: dict[frozenset[str], sa.Update] = {}


def _update_of(values: Mapping[str, Any]) -> sa.Update:
    """`UPDATE agent_sessions SET <values>, version = :_next` where tenant, id and version
    match; Core (the ORM's bulk update, evaluated against the identity map, cost more)."""
    table = AgentSession.__table__  # type: ignore[attr-defined]
    return (
        sa.update(table)
        .where(
            table.c.tenant_id == sa.bindparam("_tenant"),
            table.c.id == sa.bindparam("_id"),
            table.c.version == sa.bindparam("_version"),
        )
        .values({**{name: sa.bindparam(name) for name in values}, "version": sa.bindparam("_next")})
    )


class SessionRepository(TenantScopedRepository[AgentSession]):
    model = AgentSession

    async def find(self, session_id: str) -> AgentSession | None:
        """By id or by runtime session id (one statement, built once: every turn asks)."""
        result = await self.uow.exec(_FIND, params={"tenant": self.tenant_id, "sid": session_id})
        return result.first()

    async def count_active(self) -> int:
        result = await self.uow.exec(
            select(func.count())
            .select_from(AgentSession)
            .where(self._owned(), col(AgentSession.status) == "active")
        )
        return int(result.one())

    async def update_if_version(
        self, session_id: str, version: int, values: Mapping[str, Any]
    ) -> bool:
        """Apply `values` only if nobody else changed the session since `version`.

        Objects already loaded are not updated (a Core statement); callers read what they
        need before."""
        statement = _updates.get(frozenset(values))
        if statement is None:  # one per set of columns (a turn always sets the same ones)
            statement = _updates[frozenset(values)] = _update_of(values)
        conn = await self.uow.connection()
        result = await conn.execute(
            statement,
            {
                **values,
                "_tenant": self.tenant_id,
                "_id": session_id,
                "_version": version,
                "_next": version + 1,
            },
        )
        return bool(getattr(result, "rowcount", 0) == 1)


class BulkInserts(Repository):
    """Plain rows inserted with one executemany per table (no ORM objects: a turn may
    write hundreds of trace events)."""

    async def add(self, model: type[SQLModel], rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            conn = await self.uow.connection()
            await conn.execute(sa.insert(model), [dict(r) for r in rows])


class DeploymentSessions(Repository):
    """Counts across tenants by deployment id (ids are unique)."""

    async def active_on(self, deployment_id: str) -> int:
        result = await self.uow.exec(
            select(func.count())
            .select_from(AgentSession)
            .where(
                col(AgentSession.deployment_id) == deployment_id,
                col(AgentSession.status) == "active",
            )
        )
        return int(result.one())


# Read side and management (service.py): listing, lookups, deletion, idle ends.


class SessionQueries(TenantScopedRepository[AgentSession]):
    """Lookups and pages of sessions for the sessions and Chat APIs."""

    model = AgentSession

    async def in_project(self, project_id: str, session_id: str) -> AgentSession | None:
        """By id or runtime session id, within one project."""
        result = await self.uow.exec(
            self.select().where(
                col(AgentSession.project_id) == project_id,
                or_(
                    col(AgentSession.id) == session_id,
                    col(AgentSession.runtime_session_id) == session_id,
                ),
            )
        )
        return result.first()

    async def filtered(
        self,
        *,
        project_id: str | None = None,
        status: str = "",
        channel: str = "",
        created_by: str | None = None,
        user_id: str = "",
        agent_name: str = "",
        limit: int,
        offset: int,
    ) -> tuple[Sequence[AgentSession], int]:
        """Newest first (created_at, then id), and the number of matches. Every filter
        combination used by the APIs has an index that starts with its equality columns
        and ends with created_at."""
        conditions: list[Any] = [self._owned()]
        if project_id is not None:
            conditions.append(col(AgentSession.project_id) == project_id)
        if status:
            conditions.append(col(AgentSession.status) == status)
        if channel:
            conditions.append(col(AgentSession.channel) == channel)
        if created_by is not None:
            conditions.append(col(AgentSession.created_by) == created_by)
        if user_id:
            conditions.append(col(AgentSession.user_id) == user_id)
        if agent_name:
            conditions.append(col(AgentSession.agent_name) == agent_name)
        rows = await self.uow.exec(
            select(AgentSession)
            .where(*conditions)
            .order_by(col(AgentSession.created_at).desc(), col(AgentSession.id).desc())
            .limit(limit)
            .offset(offset)
        )
        total = await self.uow.exec(
            select(func.count()).select_from(AgentSession).where(*conditions)
        )
        return rows.all(), int(total.one())

    async def update(self, session_id: str, values: Mapping[str, Any]) -> bool:
        """Apply `values` and bump the version: a turn in flight then stores nothing."""
        result = await self.uow.execute(
            sa.update(AgentSession)
            .where(self._owned(), col(AgentSession.id) == session_id)
            .values(**values, version=AgentSession.version + 1)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def delete_with_children(self, session_id: str) -> None:
        """The session and its messages, traces, feedback and attachment rows (explicitly:
        the database's ON DELETE CASCADE is a second line)."""
        for model in (SessionMessage, TraceEventRecord, SessionFeedback, SessionAttachment):
            await self.uow.execute(
                sa.delete(model).where(
                    col(model.tenant_id) == self.tenant_id, col(model.session_id) == session_id
                )
            )
        await self.uow.execute(
            sa.delete(AgentSession).where(self._owned(), col(AgentSession.id) == session_id)
        )

    async def agent_in_project(self, project_id: str, id_or_name: str) -> Agent | None:
        result = await self.uow.exec(
            select(Agent).where(
                col(Agent.tenant_id) == self.tenant_id,
                col(Agent.project_id) == project_id,
                or_(col(Agent.id) == id_or_name, col(Agent.name) == id_or_name),
            )
        )
        return result.first()

    async def agent_by_id(self, agent_id: str) -> Agent | None:
        result = await self.uow.exec(
            select(Agent).where(col(Agent.tenant_id) == self.tenant_id, col(Agent.id) == agent_id)
        )
        return result.first()


class MessageQueries(TenantScopedRepository[SessionMessage]):
    model = SessionMessage

    async def of_session(self, session_id: str) -> Sequence[SessionMessage]:
        result = await self.uow.exec(
            self.select()
            .where(col(SessionMessage.session_id) == session_id)
            .order_by(col(SessionMessage.seq))
        )
        return result.all()

    async def in_session(self, session_id: str, message_id: str) -> SessionMessage | None:
        result = await self.uow.exec(
            self.select().where(
                col(SessionMessage.session_id) == session_id, col(SessionMessage.id) == message_id
            )
        )
        return result.first()


class TraceQueries(TenantScopedRepository[TraceEventRecord]):
    model = TraceEventRecord

    async def filtered(
        self,
        session_id: str,
        *,
        event_type: str,
        decision_kind: str,
        span_id: str,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[TraceEventRecord], int]:
        """In order (seq); a span filter matches the span and the events directly in it."""
        conditions: list[Any] = [self._owned(), col(TraceEventRecord.session_id) == session_id]
        if event_type:
            conditions.append(col(TraceEventRecord.type) == event_type)
        if decision_kind:
            conditions.append(col(TraceEventRecord.decision_kind) == decision_kind)
        if span_id:
            conditions.append(
                or_(
                    col(TraceEventRecord.span_id) == span_id,
                    col(TraceEventRecord.parent_span_id) == span_id,
                )
            )
        rows = await self.uow.exec(
            select(TraceEventRecord)
            .where(*conditions)
            .order_by(col(TraceEventRecord.seq))
            .limit(limit)
            .offset(offset)
        )
        total = await self.uow.exec(
            select(func.count()).select_from(TraceEventRecord).where(*conditions)
        )
        return rows.all(), int(total.one())

    async def of_types(self, session_id: str, types: Sequence[str]) -> Sequence[TraceEventRecord]:
        result = await self.uow.exec(
            self.select().where(
                col(TraceEventRecord.session_id) == session_id,
                col(TraceEventRecord.type).in_(types),
            )
        )
        return result.all()


class AttachmentRepository(TenantScopedRepository[SessionAttachment]):
    model = SessionAttachment

    async def of_session(self, session_id: str) -> Sequence[SessionAttachment]:
        result = await self.uow.exec(
            self.select().where(col(SessionAttachment.session_id) == session_id)
        )
        return result.all()

    async def by_ids(self, session_id: str, ids: Sequence[str]) -> Sequence[SessionAttachment]:
        result = await self.uow.exec(
            self.select().where(
                col(SessionAttachment.session_id) == session_id,
                col(SessionAttachment.id).in_(list(ids)),
            )
        )
        return result.all()


class AttachmentFiles(Repository):
    """Across tenants: is a content hash still referenced (its file must stay)?"""

    async def referenced(self, sha256: str) -> bool:
        result = await self.uow.exec(
            select(SessionAttachment.id).where(col(SessionAttachment.sha256) == sha256).limit(1)
        )
        return result.first() is not None


class FeedbackRepository(TenantScopedRepository[SessionFeedback]):
    model = SessionFeedback

    async def of_rater(
        self, session_id: str, message_id: str, rater: str
    ) -> SessionFeedback | None:
        result = await self.uow.exec(
            self.select().where(
                col(SessionFeedback.session_id) == session_id,
                col(SessionFeedback.message_id) == message_id,
                col(SessionFeedback.rater) == rater,
            )
        )
        return result.first()

    async def counts(self, session_id: str) -> dict[str, int]:
        result = await self.uow.exec(
            select(SessionFeedback.rating, func.count())
            .where(self._owned(), col(SessionFeedback.session_id) == session_id)
            .group_by(col(SessionFeedback.rating))
        )
        return {str(rating): int(n) for rating, n in result.all()}


class IdleSessions(Repository):
    """The idle sweep, across tenants (a background task, not a caller's request)."""

    async def end_idle(self, cutoff: datetime, now: datetime) -> int:
        """End active sessions without activity since `cutoff`; returns how many."""
        result = await self.uow.execute(
            sa.update(AgentSession)
            .where(
                col(AgentSession.status) == "active",
                col(AgentSession.last_activity_at) < cutoff,
            )
            .values(
                status="ended",
                outcome=sa.case(
                    (col(AgentSession.outcome) == "", "dropOff"), else_=col(AgentSession.outcome)
                ),
                end_reason="idle",
                ended_at=now,
                version=AgentSession.version + 1,
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
