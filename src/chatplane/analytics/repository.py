"""Analytics queries. Everything is aggregated in SQL over indexed columns; Python only
shapes a page or a handful of aggregate rows. Every statement filters on the tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from chatplane.analytics.types import (
    AGENT,
    DROP_OFF,
    SELF_SERVICE,
    LlmLogQuery,
    SessionQuery,
    Window,
)
from chatplane.storage.db import UnitOfWork
from chatplane.storage.models import (
    AgentSession,
    LlmCallPayload,
    SessionMessage,
    TaskExecution,
    UsageRecord,
)
from chatplane.storage.repository import Repository

S = AgentSession.__table__  # type: ignore[attr-defined]
U = UsageRecord.__table__  # type: ignore[attr-defined]
P = LlmCallPayload.__table__  # type: ignore[attr-defined]
T = TaskExecution.__table__  # type: ignore[attr-defined]
M = SessionMessage.__table__  # type: ignore[attr-defined]

TEST_CHANNEL = "test"


def containment(idle_cutoff: datetime | None) -> sa.ColumnElement[Any]:
    """The containment a session counts under: its recorded outcome, else dropOff once
    it ended (or went idle past the cutoff) without one; NULL while it is live."""
    ended = S.c.status == "ended"
    if idle_cutoff is not None:
        ended = sa.or_(ended, S.c.last_activity_at < idle_cutoff)
    return sa.case((S.c.outcome != "", S.c.outcome), (ended, DROP_OFF), else_=sa.null())


def developer() -> sa.ColumnElement[bool]:
    return sa.or_(S.c.is_developer == sa.true(), S.c.channel == TEST_CHANNEL)


def bucket(dialect: str, column: sa.ColumnElement[Any], period: str) -> sa.ColumnElement[Any]:
    """A UTC time bucket as text: `yyyy-mm` (month), `yyyy-mm-dd` (day), `yyyy-mm-dd hh`."""
    length = {"month": 7, "day": 10, "hour": 13}[period]
    if dialect == "sqlite":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)
        return sa.func.substr(column, 1, length)
    fmt = {"month": "YYYY-MM", "day": "YYYY-MM-DD", "hour": "YYYY-MM-DD HH24"}[period]
    return sa.func.to_char(sa.func.timezone("UTC", column), fmt)


class AnalyticsRepository(Repository):
    """Read-side queries of one tenant."""

    def __init__(self, uow: UnitOfWork, tenant_id: str) -> None:
        super().__init__(uow)
        self.tenant_id = tenant_id

    async def dialect(self) -> str:
        return (await self.uow.connection()).dialect.name

    async def _rows(self, stmt: sa.Executable) -> Sequence[Any]:
        conn = await self.uow.connection()
        return (await conn.execute(stmt)).all()

    # -- getSessions -------------------------------------------------------------------

    def _session_filters(
        self, q: SessionQuery, idle_cutoff: datetime | None
    ) -> list[sa.ColumnElement[bool]]:
        conds: list[sa.ColumnElement[bool]] = [S.c.tenant_id == self.tenant_id]
        if q.project_ids is not None:
            conds.append(
                S.c.project_id.in_(q.project_ids)
                if len(q.project_ids) != 1
                else S.c.project_id == q.project_ids[0]
            )
        if q.by_ids:
            conds.append(S.c.id.in_(q.session_ids))
            return conds
        conds += [S.c.created_at >= q.window.start, S.c.created_at < q.window.end]
        if q.user_id:
            conds.append(S.c.user_id == q.user_id)
        if q.session_type == "interactive":
            conds.append(S.c.turn_count > 0)
        elif q.session_type == "non-interactive":
            conds.append(S.c.turn_count == 0)
        if q.containment in (SELF_SERVICE, AGENT):
            conds.append(S.c.outcome == q.containment)
        elif q.containment == DROP_OFF:
            conds.append(containment(idle_cutoff) == DROP_OFF)
        if q.call_id:
            # Escaped like the tags below: `%` and `_` in a call id are not wildcards.
            needle = "%" + _like('"callId": ' + _json_str(q.call_id)) + "%"
            conds.append(
                sa.exists(
                    sa.select(sa.literal(1)).where(
                        M.c.session_id == S.c.id, M.c.metadata_json.like(needle, escape="\\")
                    )
                )
            )
        for name, value in q.tags:
            conds.append(S.c.tags.like("%" + _like(_json_str(name)) + "%", escape="\\"))
            if value:
                conds.append(S.c.tags.like("%" + _like(value) + "%", escape="\\"))
        return conds

    async def sessions(
        self, q: SessionQuery, idle_cutoff: datetime | None
    ) -> tuple[Sequence[sa.Row[Any]], int]:
        conds = self._session_filters(q, idle_cutoff)
        page = (
            sa.select(
                S.c.id,
                S.c.project_id,
                S.c.channel,
                S.c.user_id,
                S.c.created_at,
                S.c.ended_at,
                S.c.last_activity_at,
                S.c.language,
                S.c.turn_count,
                S.c.is_developer,
                S.c.status,
                S.c.tags,
                S.c.message_count,
                containment(idle_cutoff).label("containment"),
            )
            .where(*conds)
            .order_by(S.c.created_at.desc(), S.c.id.desc())
            .limit(q.limit)
            .offset(q.skip)
        )
        rows = await self._rows(page)
        conn = await self.uow.connection()
        total = (
            await conn.execute(sa.select(sa.func.count()).select_from(S).where(*conds))
        ).scalar()
        return rows, int(total or 0)

    async def task_counts(self, session_ids: Sequence[str]) -> dict[str, int]:
        if not session_ids:
            return {}
        rows = await self._rows(
            sa.select(T.c.session_id, sa.func.count())
            .where(T.c.tenant_id == self.tenant_id, T.c.session_id.in_(session_ids))
            .group_by(T.c.session_id)
        )
        return {r[0]: int(r[1]) for r in rows}

    # -- LLM usage logs ----------------------------------------------------------------

    async def llm_logs(self, q: LlmLogQuery) -> Sequence[sa.Row[Any]]:
        feature = sa.func.coalesce(
            P.c.feature,
            sa.case((U.c.session_id != "", "Agent Node"), else_="Chat Completion"),
        )
        conds: list[sa.ColumnElement[bool]] = [
            U.c.tenant_id == self.tenant_id,
            U.c.project_id == q.project_id,
            U.c.created_at >= q.window.start,
            U.c.created_at < q.window.end,
        ]
        if q.channels:
            conds.append(sa.func.coalesce(S.c.channel, "api").in_(q.channels))
        if q.user_ids:
            conds.append(S.c.user_id.in_(q.user_ids))
        if not q.include_developer:
            conds.append(sa.or_(S.c.id.is_(None), sa.not_(developer())))
        if q.features:
            conds.append(feature.in_(q.features))
        if q.task_id:
            conds.append(P.c.task_id == q.task_id)
        order: list[Any]
        if q.sort_desc is None:
            order = [U.c.created_at.desc(), U.c.id.desc()]
        elif q.sort_desc:
            order = [U.c.latency_ms.desc(), U.c.id.desc()]
        else:
            order = [U.c.latency_ms.asc(), U.c.id.asc()]
        stmt = (
            sa.select(
                U.c.id,
                U.c.project_id,
                U.c.model,
                U.c.provider,
                U.c.input_tokens,
                U.c.output_tokens,
                U.c.latency_ms,
                U.c.status,
                U.c.created_at,
                S.c.user_id,
                S.c.channel,
                S.c.agent_name,
                feature.label("feature"),
                P.c.description,
                P.c.task_id,
                P.c.request_json,
                P.c.response_json,
            )
            .select_from(U.outerjoin(S, S.c.id == U.c.session_id).outerjoin(P, P.c.id == U.c.id))
            .where(*conds)
            .order_by(*order)
            .limit(q.limit)
            .offset(q.skip)
        )
        return await self._rows(stmt)

    # -- billing summary ---------------------------------------------------------------

    async def billing(
        self, project_ids: Sequence[str] | None, window: Window, period: str, by_bot: bool
    ) -> Sequence[sa.Row[Any]]:
        key = bucket(await self.dialect(), S.c.created_at, period).label("bucket")
        group: list[Any] = [key]
        columns: list[Any] = [key]
        if by_bot:
            group.append(S.c.project_id)
            columns.append(S.c.project_id)
        conds = [
            S.c.tenant_id == self.tenant_id,
            S.c.created_at >= window.start,
            S.c.created_at < window.end,
            sa.not_(developer()),
        ]
        if project_ids is not None:
            conds.append(S.c.project_id.in_(project_ids))
        stmt = (
            sa.select(
                *columns,
                sa.func.count().label("sessions"),
                sa.func.coalesce(sa.func.sum(S.c.turn_count), 0).label("requests"),
                sa.func.count(sa.case((S.c.turn_count > 0, 1))).label("conversations"),
            )
            .where(*conds)
            .group_by(*group)
            .order_by(*group)
        )
        return await self._rows(stmt)

    # -- task containment --------------------------------------------------------------

    async def containment_rows(
        self,
        project_id: str,
        window: Window,
        *,
        daily: bool,
        idle_cutoff: datetime | None,
        task_names: Sequence[str],
        interactive: bool | None,
        active: bool | None,
        include_developer: bool,
    ) -> Sequence[sa.Row[Any]]:
        """Per (bucket, task, status): executions, sessions and their containment.

        Executions are the recorded task_executions; a session without any counts as one
        execution of its agent (success unless a turn failed) until turns record them."""
        recorded = sa.select(
            T.c.session_id,
            T.c.task_name,
            T.c.task_type,
            T.c.status,
            T.c.created_at,
        ).where(
            T.c.tenant_id == self.tenant_id,
            T.c.project_id == project_id,
            T.c.created_at >= window.start,
            T.c.created_at < window.end,
        )
        t2 = T.alias("t2")
        derived = sa.select(
            S.c.id.label("session_id"),
            S.c.agent_name.label("task_name"),
            sa.literal("dialog").label("task_type"),
            sa.case((S.c.error_count > 0, "failtask"), else_="success").label("status"),
            S.c.created_at,
        ).where(
            S.c.tenant_id == self.tenant_id,
            S.c.project_id == project_id,
            S.c.created_at >= window.start,
            S.c.created_at < window.end,
            S.c.turn_count > 0,
            ~sa.exists(sa.select(sa.literal(1)).where(t2.c.session_id == S.c.id)),
        )
        e = sa.union_all(recorded, derived).subquery("e")
        day = bucket(await self.dialect(), e.c.created_at, "day") if daily else sa.literal("")
        kind = containment(idle_cutoff)
        conds: list[sa.ColumnElement[bool]] = [S.c.tenant_id == self.tenant_id]
        if task_names:
            conds.append(e.c.task_name.in_(task_names))
        if interactive is not None:
            conds.append(S.c.turn_count > 0 if interactive else S.c.turn_count == 0)
        if active is not None:
            conds.append(S.c.status == ("active" if active else "ended"))
        if not include_developer:
            conds.append(sa.not_(developer()))

        def sessions_with(value: str) -> Any:
            return sa.func.count(sa.distinct(sa.case((kind == value, e.c.session_id))))

        stmt = (
            sa.select(
                day.label("bucket"),
                e.c.task_name,
                e.c.task_type,
                e.c.status,
                sa.func.count().label("executions"),
                sa.func.count(sa.distinct(e.c.session_id)).label("sessions"),
                sessions_with(SELF_SERVICE).label("self_service"),
                sessions_with(DROP_OFF).label("drop_off"),
                sessions_with(AGENT).label("agent"),
            )
            .select_from(e.join(S, S.c.id == e.c.session_id))
            .where(*conds)
            .group_by(day, e.c.task_name, e.c.task_type, e.c.status)
            .order_by(day, e.c.task_name, e.c.status)
        )
        return await self._rows(stmt)


def _json_str(value: str) -> str:
    import json  # noqa: PLC0415

    return json.dumps(value)


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
