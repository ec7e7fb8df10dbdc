"""Analytics use cases: sessions history, LLM usage logs, billing summary and task
containment report (the last two as durable jobs), in the vendor's JSON shapes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from chatplane.analytics import jobs, reports
from chatplane.analytics.repository import AnalyticsRepository
from chatplane.analytics.types import (
    CONTAINMENT_TYPES,
    LlmLogQuery,
    SessionQuery,
    Window,
    as_int,
    date_window,
    str_list,
)
from chatplane.analytics.vendor import (
    job_record,
    llm_log_record,
    lower_status,
    range_label,
    session_tags,
    tag_filter,
    vendor_limit,
)
from chatplane.errors import InvalidArgument, NotFound
from chatplane.kit.clock import iso, utcnow
from chatplane.projects.service import ProjectService
from chatplane.ratelimit import RateLimiter
from chatplane.storage.db import Database
from chatplane.storage.models import AnalyticsJob

MAX_SESSION_IDS = 50
SESSIONS_MAX_DAYS = 7
LOGS_MAX_DAYS = 90
BILLING_MAX_DAYS = 90
CONTAINMENT_MAX_DAYS = 90
CONTAINMENT_DAILY_MAX_DAYS = 30
SESSION_TAGS_DAYS = 14
BILLING, CONTAINMENT = "billing_summary", "containment"
PERIODS = {"date_month": "month", "date_day": "day", "date_day_hour": "hour"}
UNIT_KEYS = {
    "request": "requests",
    "session": "sessions",
    "alert": "alert_notifications",
    "proactive": "proactive_notifications",
    "conversations": "conversations",
}


class AnalyticsService:
    def __init__(
        self,
        db: Database,
        *,
        projects: ProjectService,
        runner: jobs.JobRunner,
        idle_minutes: float,
        vendor_limiter: RateLimiter | None = None,
    ) -> None:
        self._db = db
        self._projects = projects
        self._runner = runner
        self._idle = idle_minutes
        self.limiter = vendor_limiter
        runner.register(BILLING, self._run_billing)
        runner.register(CONTAINMENT, self._run_containment)

    def _idle_cutoff(self, now: datetime) -> datetime | None:
        return now - timedelta(minutes=self._idle) if self._idle > 0 else None

    async def _projects_of(
        self, tenant_id: str, bot_id: str, stream_ids: Any
    ) -> tuple[str, ...] | None:
        """The bot (404 unless the caller's), or every project (None) / the listed ones."""
        if bot_id:
            await self._projects.get(tenant_id, bot_id)
            return (bot_id,)
        ids = str_list(stream_ids, "streamIds", max_items=100)
        for pid in ids:
            await self._projects.get(tenant_id, pid)
        return ids or None

    # -- getSessions -------------------------------------------------------------------

    async def get_sessions(
        self,
        tenant_id: str,
        bot_id: str,
        body: dict[str, Any],
        *,
        containment_type: str = "",
        call_id: str = "",
    ) -> dict[str, Any]:
        await vendor_limit(self.limiter, f"xo:bot:{tenant_id}:{bot_id or '*'}")
        project_ids = await self._projects_of(tenant_id, bot_id, body.get("streamIds"))
        now = utcnow()
        if containment_type and containment_type not in CONTAINMENT_TYPES:
            raise InvalidArgument(
                "containmentType must be one of dropOff, selfService, agent",
                field="containmentType",
                reason="INVALID_CONTAINMENT_TYPE",
            )
        session_type = body.get("sessionType") or ""
        if session_type not in ("", "interactive", "non-interactive"):
            raise InvalidArgument(
                "sessionType must be interactive or non-interactive",
                field="sessionType",
                reason="INVALID_SESSION_TYPE",
            )
        raw_ids = body.get("sessionId")
        ids: tuple[str, ...] = ()
        if raw_ids not in (None, [], ""):
            ids = str_list(raw_ids, "sessionId", max_items=10_000)
            if len(ids) > MAX_SESSION_IDS:
                raise InvalidArgument(
                    f"sessionId accepts at most {MAX_SESSION_IDS} ids",
                    field="sessionId",
                    reason="TOO_MANY_SESSION_IDS",
                )
        skip_raw = body.get("skip", body.get("offset"))
        query = SessionQuery(
            project_ids=project_ids,
            window=Window(now, now)
            if ids
            else date_window(
                body.get("dateFrom"), body.get("dateTo"), now=now, max_days=SESSIONS_MAX_DAYS
            ),
            skip=as_int(skip_raw, "skip", default=0, low=0, high=1_000_000),
            limit=as_int(body.get("limit"), "limit", default=100, low=1, high=1000),
            user_id=str(body.get("userId") or ""),
            session_type=session_type,
            containment=containment_type,
            call_id=call_id,
            tags=tag_filter(body.get("tags")),
            session_ids=tuple(dict.fromkeys(ids)),
            by_ids=bool(ids),
        )
        cutoff = self._idle_cutoff(now)
        async with self._db.read() as uow:
            repo = AnalyticsRepository(uow, tenant_id)
            rows, total = await repo.sessions(query, cutoff)
            tasks = await repo.task_counts([r.id for r in rows])
        recent = now - timedelta(days=SESSION_TAGS_DAYS)
        sessions = []
        for r in rows:
            created = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC)
            tags = session_tags(r.tags)
            if query.by_ids and created < recent:
                tags["sessionTags"] = []
            sessions.append(
                {
                    "sessionId": r.id,
                    "botId": r.project_id,
                    "channel": r.channel,
                    "userId": r.user_id,
                    "start_time": iso(r.created_at),
                    "end_time": iso(r.ended_at or r.last_activity_at),
                    "session_lang": [r.language or "en"],
                    "sessionType": "interactive" if r.turn_count > 0 else "non-interactive",
                    "isDeveloper": bool(r.is_developer) or r.channel == "test",
                    "sessionStatus": "closed" if r.status == "ended" else "active",
                    "tags": tags,
                    "noOfMessagesExchanged": r.message_count,
                    "noOfTasksExecuted": tasks.get(r.id, 0) or (1 if r.turn_count > 0 else 0),
                    "containmentType": r.containment,
                }
            )
        found = {r.id for r in rows}
        invalid = [i for i in query.session_ids if i not in found] if query.by_ids else []
        return {
            "total": total,
            "moreAvailable": query.skip + len(rows) < total,
            "sessions": sessions,
            "invalidSessions": invalid,
        }

    # -- LLM usage logs ----------------------------------------------------------------

    async def llm_logs(self, tenant_id: str, bot_id: str, body: dict[str, Any]) -> list[Any]:
        await self._projects.get(tenant_id, bot_id)
        now = utcnow()
        if not body.get("dateFrom") or not body.get("dateTo"):
            raise InvalidArgument(
                "dateFrom and dateTo are required", field="dateFrom", reason="MISSING_DATES"
            )
        sort = body.get("sort") or {}
        sort_desc: bool | None = None
        if isinstance(sort, dict) and sort.get("field"):
            if sort.get("field") != "Time Taken":
                raise InvalidArgument(
                    'sort.field must be "Time Taken"', field="sort", reason="INVALID_SORT"
                )
            sort_desc = str(sort.get("order") or "asc").lower() == "desc"
        users = (
            *str_list(body.get("userIds"), "userIds"),
            *str_list(body.get("userId"), "userId"),
            *str_list(body.get("channelUserIds"), "channelUserIds"),
            *str_list(body.get("channelUIds"), "channelUIds"),
        )
        task = body.get("taskId") or ""
        if isinstance(task, list):
            task = task[0] if task else ""
        query = LlmLogQuery(
            project_id=bot_id,
            window=date_window(
                body.get("dateFrom"), body.get("dateTo"), now=now, max_days=LOGS_MAX_DAYS
            ),
            skip=as_int(body.get("skip"), "skip", default=0, low=0, high=10_000_000),
            limit=as_int(body.get("limit"), "limit", default=50, low=1, high=1000),
            channels=str_list(body.get("channel"), "channel"),
            user_ids=users,
            include_developer=body.get("isDeveloper") in (True, "true", 1),
            features=str_list(body.get("featureName"), "featureName"),
            task_id=str(task),
            sort_desc=sort_desc,
        )
        async with self._db.read() as uow:
            rows = await AnalyticsRepository(uow, tenant_id).llm_logs(query)
        return [llm_log_record(r) for r in rows]

    # -- jobs ----------------------------------------------------------------------------

    async def _enqueue(
        self, tenant_id: str, project_id: str, kind: str, params: dict[str, Any], created_by: str
    ) -> AnalyticsJob:
        row = await jobs.enqueue(
            self._db,
            tenant_id=tenant_id,
            project_id=project_id,
            kind=kind,
            params=params,
            created_by=created_by,
        )
        self._runner.wake()
        return row

    async def start_billing(
        self, tenant_id: str, bot_id: str, body: dict[str, Any], *, created_by: str
    ) -> dict[str, Any]:
        project_ids = await self._projects_of(tenant_id, bot_id, body.get("streamIds"))
        for name in ("fromDate", "toDate"):
            if not body.get(name):
                raise InvalidArgument(f"{name} is required", field=name, reason="MISSING_DATE")
        window = date_window(
            body.get("fromDate"),
            body.get("toDate"),
            now=utcnow(),
            max_days=BILLING_MAX_DAYS,
            names=("fromDate", "toDate"),
        )
        units = str_list(body.get("unitType"), "unitType")
        unknown = [u for u in units if u not in UNIT_KEYS]
        if unknown or not units:
            raise InvalidArgument(
                "unitType must list any of session, request, alert, proactive, conversations",
                field="unitType",
                reason="INVALID_UNIT_TYPE",
            )
        period = body.get("groupByPeriod") or "date_day"
        if period not in PERIODS:
            raise InvalidArgument(
                "groupByPeriod must be date_month, date_day or date_day_hour",
                field="groupByPeriod",
                reason="INVALID_PERIOD",
            )
        by_bot = str(body.get("groupByBot", body.get("groupByApp", "no"))).lower() == "yes"
        params = {
            "projectIds": list(project_ids) if project_ids is not None else None,
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "units": list(units),
            "period": PERIODS[period],
            "byBot": by_bot,
        }
        row = await self._enqueue(tenant_id, bot_id, BILLING, params, created_by)
        head: dict[str, Any] = {"reportId": row.id.removeprefix("ds-")[:8]}
        return head | job_record(
            row,
            owner_key="streamId" if bot_id else "orgId",
            owner=bot_id or tenant_id,
            job_type="BILLINGSESSIONS_API",
        )

    async def billing_status(self, tenant_id: str, bot_id: str) -> dict[str, Any]:
        if bot_id:
            await self._projects.get(tenant_id, bot_id)
        row = await jobs.latest(self._db, tenant_id, bot_id, BILLING)
        if row is None:
            raise NotFound("No billing summary was requested", reason="NO_SUMMARY")
        out: dict[str, Any] = {"_id": row.id, "status": lower_status(row.status)}
        if row.status == jobs.SUCCEEDED:
            out["response"] = json.loads(row.result)
        elif row.status == jobs.FAILED:
            out["reason"] = row.error
        else:
            out["percentageComplete"] = row.percentage
        out |= {"__v": 0, "lastModifiedBy": row.created_by, "modifiedOn": iso(row.updated_at)}
        return out

    async def _run_billing(self, job: jobs.Job, progress: jobs.Progress) -> dict[str, Any]:
        return await reports.billing(self._db, job)

    async def _run_containment(self, job: jobs.Job, progress: jobs.Progress) -> dict[str, Any]:
        cutoff = self._idle_cutoff(utcnow())
        return await reports.containment(self._db, job, progress, idle_cutoff=cutoff)

    async def start_containment(
        self,
        tenant_id: str,
        bot_id: str,
        body: dict[str, Any],
        *,
        skip: int,
        limit: int,
        created_by: str,
    ) -> dict[str, Any]:
        await self._projects.get(tenant_id, bot_id)
        f = body.get("filters") if isinstance(body.get("filters"), dict) else body
        assert isinstance(f, dict)
        aggregation = f.get("AggregationType") or "Daily"
        if aggregation not in ("Daily", "Cumulative"):
            raise InvalidArgument(
                "AggregationType must be Daily or Cumulative",
                field="AggregationType",
                reason="INVALID_AGGREGATION",
            )
        window = date_window(
            f.get("dateFrom"),
            f.get("dateTo"),
            now=utcnow(),
            max_days=CONTAINMENT_DAILY_MAX_DAYS if aggregation == "Daily" else CONTAINMENT_MAX_DAYS,
        )
        ctype = f.get("ConversationType") or ""
        cstatus = f.get("ConversationStatus") or ""
        if ctype not in ("", "Interactive", "Non-Interactive"):
            raise InvalidArgument(
                "ConversationType must be Interactive or Non-Interactive",
                field="ConversationType",
                reason="INVALID_CONVERSATION_TYPE",
            )
        if cstatus not in ("", "Active", "Closed"):
            raise InvalidArgument(
                "ConversationStatus must be Active or Closed",
                field="ConversationStatus",
                reason="INVALID_CONVERSATION_STATUS",
            )
        params = {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "daily": aggregation == "Daily",
            "tasks": list(str_list(f.get("includeTaskName"), "includeTaskName")),
            "interactive": None if not ctype else ctype == "Interactive",
            "active": None if not cstatus else cstatus == "Active",
            "developer": f.get("isDeveloper") in (True, "true"),
            "skip": max(0, skip),
            "limit": limit if 0 < limit <= 1000 else 100,
            "label": range_label(window),
        }
        row = await self._enqueue(tenant_id, bot_id, CONTAINMENT, params, created_by)
        return job_record(
            row,
            owner_key="streamId",
            owner=bot_id,
            job_type="TASK_EXECUTION_CONTAINMENT_REPORT",
            count=True,
        )

    async def containment_status(self, tenant_id: str, bot_id: str, job_id: str) -> dict[str, Any]:
        await self._projects.get(tenant_id, bot_id)
        row = await jobs.load(self._db, tenant_id, job_id)
        if row is None or row.project_id != bot_id or row.kind != CONTAINMENT:
            raise NotFound("Report not found", reason="REPORT_NOT_FOUND")
        if row.status == jobs.SUCCEEDED:
            return {"tasksExecutionReport": json.loads(row.result), "status": "SUCCESS"}
        out = job_record(
            row,
            owner_key="streamId",
            owner=bot_id,
            job_type="TASK_EXECUTION_CONTAINMENT_REPORT",
            count=True,
        )
        if row.status == jobs.FAILED:
            out["reason"] = row.error
        return out


__all__: Sequence[str] = ("AnalyticsService",)
