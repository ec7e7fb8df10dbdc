"""The report jobs' bodies (billing summary, task containment), run by the job runner."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chatplane.analytics import jobs
from chatplane.analytics.repository import AnalyticsRepository
from chatplane.analytics.types import Window, percentage
from chatplane.analytics.vendor import bucket_count, bucket_iso
from chatplane.storage.db import Database


async def billing(db: Database, job: jobs.Job) -> dict[str, Any]:
    p = job.params
    window = Window(datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"]))
    async with db.read() as uow:
        rows = await AnalyticsRepository(uow, job.tenant_id).billing(
            p["projectIds"], window, p["period"], p["byBot"]
        )
    units = set(p["units"])
    groups: dict[str, list[dict[str, Any]]] = {}
    total = 0
    for r in rows:
        bot = r.project_id if p["byBot"] else "ALL"
        val = {
            "requests": int(r.requests) if "request" in units else 0,
            "sessions": int(r.sessions) if "session" in units else 0,
            "alert_notifications": 0,
            "proactive_notifications": 0,
            "conversations": int(r.conversations) if "conversations" in units else 0,
        }
        total += int(r.sessions)
        groups.setdefault(bot, []).append({"date": bucket_iso(r.bucket, p["period"]), "val": val})
    if not groups and not p["byBot"]:
        groups["ALL"] = []
    buckets = bucket_count(window, p["period"])
    return {
        "data": [{"bot": bot, "val": val} for bot, val in groups.items()],
        "averageSessions": round(total / buckets, 2) if buckets else 0,
    }


async def containment(
    db: Database, job: jobs.Job, progress: jobs.Progress, *, idle_cutoff: datetime | None
) -> dict[str, Any]:
    p = job.params
    window = Window(datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"]))
    async with db.read() as uow:
        rows = await AnalyticsRepository(uow, job.tenant_id).containment_rows(
            job.project_id,
            window,
            daily=p["daily"],
            idle_cutoff=idle_cutoff,
            task_names=p["tasks"],
            interactive=p["interactive"],
            active=p["active"],
            include_developer=p["developer"],
        )
    await progress(90)
    report_rows = []
    for r in rows:
        key = r.bucket if p["daily"] else p["label"]
        sessions = int(r.sessions)
        report_rows.append(
            (
                key,
                {
                    "totalExecution": int(r.executions),
                    "totalSession": sessions,
                    "selfServiceSessions": int(r.self_service),
                    "dropOffSessions": int(r.drop_off),
                    "agentTransferSessions": int(r.agent),
                    "dateRange": key,
                    "taskType": r.task_type,
                    "taskName": r.task_name,
                    "Status": r.status,
                    "selfServiceSessionsInPercentage": percentage(int(r.self_service), sessions),
                    "dropOffSessionsInPercentage": percentage(int(r.drop_off), sessions),
                    "agentTransferSessionsInPercentage": percentage(int(r.agent), sessions),
                },
            )
        )
    page = report_rows[p["skip"] : p["skip"] + p["limit"]]
    data: dict[str, list[dict[str, Any]]] = {}
    for key, item in page:
        data.setdefault(key, []).append(item)
    return {"total": len(report_rows), "data": data}
