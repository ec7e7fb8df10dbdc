"""XO analytics at scale: `python -m bench.analytics_scale [SESSIONS]` (default 1,000,000).

Seeds a fresh SQLite database with SESSIONS sessions over the last 90 days (two
projects; outcomes rotating selfService / agent / dropOff / live; 3 turns each; one in 20
a developer session) and one LLM usage record per 4 sessions, then times, each the median
of 20 runs, what the routes run: getSessions (a page of 100 over 7 days, with and without
`containmentType`), the task containment report (Daily over 30 days: the job's query and
shaping) and a page of 50 LLM usage logs (over 30 days); and prints EXPLAIN QUERY PLAN of
each statement, so the indexes they use are visible.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa

from bench.stats import median_ms
from chatplane.analytics import jobs
from chatplane.analytics.service import CONTAINMENT, AnalyticsService
from chatplane.kit.clock import utcnow
from chatplane.kit.ids import cuid
from chatplane.projects.service import ProjectService
from chatplane.storage.db import Database
from chatplane.storage.models import AgentSession, Project, Tenant, UsageRecord

RUNS = 20
BATCH = 20_000
OUTCOMES = ("selfService", "agent", "dropOff", "")
SPAN = dt.timedelta(days=90)


def _templates(tenant_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    session = AgentSession(
        id="x", runtime_session_id="x", tenant_id=tenant_id, project_id="p"
    ).model_dump()
    usage = UsageRecord(
        id="x", tenant_id=tenant_id, project_id="p", model="claude-sonnet-4-5", provider="anthropic"
    ).model_dump()
    return session, usage


async def seed(db: Database, rows: int) -> tuple[str, list[str]]:
    await db.migrate()
    tenant = Tenant(id=cuid(), name="bench")
    projects = [Project(id=cuid(), tenant_id=tenant.id, name=f"p{i}") for i in range(2)]
    async with db.uow() as uow:
        uow.add(tenant)
        await uow.flush()
        uow.add_all(projects)
    pids = [p.id for p in projects]
    s_tmpl, u_tmpl = _templates(tenant.id)
    now = utcnow()
    step = SPAN / max(1, rows)
    started = time.perf_counter()
    for first in range(0, rows, BATCH):
        sessions, usage = [], []
        for i in range(first, min(rows, first + BATCH)):
            created = now - step * i
            outcome = OUTCOMES[(i // 2) % 4]
            sid = f"sess_{cuid()}"
            sessions.append(
                s_tmpl
                | {
                    "id": sid,
                    "runtime_session_id": str(uuid.uuid4()),
                    "project_id": pids[i % 2],
                    "agent_name": ("Support", "Billing", "Orders")[i % 3],
                    "channel": "test" if i % 20 == 0 else "api",
                    "user_id": f"user-{i % 5000}",
                    "status": "active" if outcome == "" else "ended",
                    "outcome": outcome,
                    "turn_count": 3,
                    "message_count": 6,
                    "token_count": 900,
                    "created_at": created,
                    "last_activity_at": created + dt.timedelta(minutes=2),
                    "ended_at": None if outcome == "" else created + dt.timedelta(minutes=2),
                }
            )
            if i % 4 == 0:
                usage.append(
                    u_tmpl
                    | {
                        "id": cuid(),
                        "project_id": pids[i % 2],
                        "session_id": sid,
                        "input_tokens": 500,
                        "output_tokens": 120,
                        "latency_ms": 300 + i % 700,
                        "created_at": created + dt.timedelta(seconds=5),
                    }
                )
        async with db.uow() as uow:
            conn = await uow.connection()
            await conn.execute(sa.insert(AgentSession), sessions)
            if usage:
                await conn.execute(sa.insert(UsageRecord), usage)
    async with db.engine.connect() as conn:
        await conn.execute(sa.text("ANALYZE"))
    print(
        f"SQLite: seeded {rows:,} sessions and {rows // 4:,} usage records "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return tenant.id, pids


async def bench(rows: int) -> None:
    tmp = tempfile.TemporaryDirectory(prefix="analytics-scale-")  # a 1M-row file: removed
    db = Database(f"sqlite+aiosqlite:///{tmp.name}/analytics.db")
    try:
        tenant_id, pids = await seed(db, rows)
        service = AnalyticsService(
            db, projects=ProjectService(db), runner=jobs.JobRunner(db), idle_minutes=30
        )
        pid = pids[0]
        today = utcnow().date()
        week = {"dateFrom": str(today - dt.timedelta(days=6)), "dateTo": str(today)}

        async def sessions(containment: str = "") -> None:
            out = await service.get_sessions(
                tenant_id, pid, {**week, "limit": 100}, containment_type=containment
            )
            assert len(out["sessions"]) == 100, out["total"]

        async def containment() -> None:
            job = jobs.Job(
                "ds-bench",
                tenant_id,
                pid,
                CONTAINMENT,
                {
                    "start": dt.datetime.combine(
                        today - dt.timedelta(days=29), dt.time(), dt.UTC
                    ).isoformat(),
                    "end": dt.datetime.combine(
                        today + dt.timedelta(days=1), dt.time(), dt.UTC
                    ).isoformat(),
                    "daily": True,
                    "tasks": [],
                    "interactive": None,
                    "active": None,
                    "developer": False,
                    "skip": 0,
                    "limit": 100,
                    "label": "",
                },
                "bench",
            )

            async def progress(_: int) -> None:
                return None

            out = await service._run_containment(job, progress)
            assert out["total"] > 0

        async def logs() -> None:
            out = await service.llm_logs(
                tenant_id,
                pid,
                {
                    "dateFrom": str(today - dt.timedelta(days=29)),
                    "dateTo": str(today),
                    "limit": 50,
                    "isDeveloper": True,
                },
            )
            assert len(out) == 50

        cases: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("getSessions, 7 days, page of 100", sessions),
            ("getSessions, containmentType=agent", lambda: sessions("agent")),
            ("containment report, Daily, 30 days", containment),
            ("LLM usage logs, 30 days, page of 50", logs),
        ]
        for label, fn in cases:
            print(f"  {label:40s} {await median_ms(fn, RUNS):8.1f} ms p50")
        for label, fn in cases:
            await explain_plain(db, label, fn)
    finally:
        await db.dispose()
        tmp.cleanup()


async def explain_plain(db: Database, label: str, run: Callable[[], Awaitable[None]]) -> None:
    """EXPLAIN QUERY PLAN of the statements `run` executes, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        wanted = "FROM sessions" in statement or "FROM usage_records" in statement
        if wanted and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, params))

    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await run()
    finally:
        sa.event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    print(f"  plan: {label}")
    async with db.engine.connect() as conn:
        for statement, params in seen:
            raw = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, tuple(params))
            for row in raw.fetchall():
                print("    " + str(row._mapping["detail"]))  # (id, parent, notused, detail)
            print("    --")


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    asyncio.run(bench(rows))


if __name__ == "__main__":
    main()
