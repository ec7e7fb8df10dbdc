"""Usage aggregates at scale: `python -m bench.usage_scale [ROWS]` (default 1,000,000).

Fills a fresh SQLite database with ROWS usage records split over two projects, then
times GET /api/v1/chat/usage's queries (all time and one day, with and without the
per-model breakdown) against a plain COUNT(*) over the same project as the baseline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import tempfile
import time

from sqlmodel import func, select

from chatplane.kit.clock import utcnow
from chatplane.kit.ids import cuid
from chatplane.storage.db import Database
from chatplane.storage.models import Project, Tenant, UsageRecord
from chatplane.usage.repository import UsageInserts, UsageRepository

MODELS = ("claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-8")


async def run(rows: int) -> None:
    tmp = tempfile.TemporaryDirectory(prefix="usage-scale-")  # removed at the end
    db = Database(f"sqlite+aiosqlite:///{tmp.name}/usage.db")
    await db.migrate()
    tenant = Tenant(id=cuid(), name="bench")
    projects = [Project(id=cuid(), tenant_id=tenant.id, name=f"p{i}") for i in range(2)]
    async with db.uow() as session:
        session.add(tenant)
        await session.flush()
        session.add_all(projects)
    now = utcnow()
    started = time.perf_counter()
    for first in range(0, rows, 20_000):
        batch = [
            {
                "id": cuid(),
                "tenant_id": tenant.id,
                "project_id": projects[i % 2].id,
                "session_id": "",
                "model": MODELS[i % 3],
                "provider": "anthropic",
                "input_tokens": 100,
                "output_tokens": 50,
                "cache_read_tokens": 0,
                "cache_write_tokens": 0,
                "cost": 0.001,
                "latency_ms": 500,
                "ttft_ms": 100,
                "finish_reason": "end_turn",
                "status": "ok",
                "created_at": now - dt.timedelta(seconds=i),
            }
            for i in range(first, min(rows, first + 20_000))
        ]
        async with db.uow() as session:
            await UsageInserts(session).insert_rows(batch)
    print(f"inserted {rows:,} rows in {time.perf_counter() - started:.1f} s")

    pid = projects[0].id
    async with db.read() as session:
        t0 = time.perf_counter()
        count = (
            await session.exec(
                select(func.count())
                .select_from(UsageRecord)
                .where(UsageRecord.tenant_id == tenant.id, UsageRecord.project_id == pid)
            )
        ).one()
        baseline = time.perf_counter() - t0
    print(f"baseline COUNT(*) of the project's {count:,} rows: {baseline * 1000:.0f} ms")
    for by_model in (False, True):
        for label, start in (("all time", None), ("last day", now - dt.timedelta(days=1))):
            async with db.read() as session:
                t0 = time.perf_counter()
                totals = await UsageRepository(session, tenant.id).totals(
                    pid, start=start, end=None, by_model=by_model
                )
                took = time.perf_counter() - t0
            n = sum(t.request_count for t in totals)
            print(
                f"{'by model' if by_model else 'summary':8} {label:8} {n:>9,} records: "
                f"{took * 1000:5.0f} ms ({took / baseline:.1f}x the COUNT(*))"
            )
    await db.dispose()
    tmp.cleanup()


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
