"""Session list and get at scale: `python -m bench.sessions_scale [ROWS] [DATABASE_URL]`.

Fills a fresh database (SQLite in a temp dir by default; a PostgreSQL URL such as
`postgresql://user@127.0.0.1:5432/db` works too, or CHATPLANE_TEST_DATABASE_URL's
server with `pg`) with ROWS sessions (default 1,000,000) split over two projects, a
quarter of them active and a tenth of channel `chat`, then times what
GET /api/projects/{projectId}/sessions and GET .../sessions/{id} run: the page query
plus the total count, for the first page, a page deep in the list, and with the status
and channel filters; and a get by id. Each figure is the median of 20 runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.stats import median_ms
from chatplane.config import normalize_database_url
from chatplane.kit.clock import utcnow
from chatplane.kit.ids import cuid
from chatplane.sessions.repository import SessionQueries
from chatplane.storage.db import Database
from chatplane.storage.models import AgentSession, Project, Tenant

RUNS = 20
BATCH = 20_000


def _row(i: int, tenant_id: str, project_ids: list[str], now: dt.datetime) -> dict[str, Any]:
    created = now - dt.timedelta(seconds=i)
    return {
        "id": f"sess_{cuid()}",
        "runtime_session_id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "project_id": project_ids[i % 2],
        "deployment_id": None,
        "environment": "",
        "agent_id": "agent",
        "agent_name": "Support",
        "channel": "chat" if i % 10 == 0 else "api",
        "user_id": "",
        "tags": "[]",
        "language": "",
        "status": "active" if i % 4 == 0 else "ended",
        "outcome": "" if i % 4 == 0 else "selfService",
        "end_reason": "",
        "state": "{}",
        "turn_count": 3,
        "message_count": 6,
        "trace_event_count": 20,
        "token_count": 1200,
        "estimated_cost": 0.01,
        "error_count": 0,
        "version": 3,
        "created_at": created,
        "last_activity_at": created,
        "ended_at": None,
        "created_by": "",
        "metadata_json": "",
    }


async def _fresh_postgres(url: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415

    base = make_url(normalize_database_url(url))
    name = f"chatplane_bench_{uuid.uuid4().hex[:8]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()

    async def drop() -> None:
        c = await asyncpg.connect(admin)
        await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await c.close()

    return base.set(database=name).render_as_string(hide_password=False), drop


async def run(rows: int, url: str | None) -> None:
    drop = None
    tmp = tempfile.TemporaryDirectory(prefix="sessions-scale-")  # removed at the end
    if url:
        url, drop = await _fresh_postgres(url)
        backend = "PostgreSQL"
    else:
        url = f"sqlite+aiosqlite:///{tmp.name}/sessions.db"
        backend = "SQLite"
    db = Database(url)
    try:
        await _bench(db, rows, backend)
    finally:
        await db.dispose()
        if drop is not None:
            await drop()
        tmp.cleanup()


async def _bench(db: Database, rows: int, backend: str) -> None:
    await db.migrate()
    tenant = Tenant(id=cuid(), name="bench")
    projects = [Project(id=cuid(), tenant_id=tenant.id, name=f"p{i}") for i in range(2)]
    async with db.uow() as uow:
        uow.add(tenant)
        await uow.flush()
        uow.add_all(projects)
    project_ids = [p.id for p in projects]
    now = utcnow()
    started = time.perf_counter()
    for first in range(0, rows, BATCH):
        batch = [
            _row(i, tenant.id, project_ids, now) for i in range(first, min(rows, first + BATCH))
        ]
        async with db.uow() as uow:
            conn = await uow.connection()
            await conn.execute(sa.insert(AgentSession), batch)
    print(f"{backend}: inserted {rows:,} sessions in {time.perf_counter() - started:.1f} s")
    if backend == "PostgreSQL":  # what autovacuum does in production: stats, visibility map
        async with db.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(sa.text("VACUUM ANALYZE sessions"))

    pid = project_ids[0]

    async def page(**filters: Any) -> None:
        async with db.read() as uow:
            await SessionQueries(uow, tenant.id).filtered(project_id=pid, **filters)

    cases: list[tuple[str, dict[str, Any]]] = [
        ("list, first page (limit 50)", {"limit": 50, "offset": 0}),
        ("list, limit 200", {"limit": 200, "offset": 0}),
        ("list, offset 10,000", {"limit": 50, "offset": 10_000}),
        ("list, offset 400,000", {"limit": 50, "offset": min(400_000, rows // 2 - 50)}),
        ("list, status=active", {"limit": 50, "offset": 0, "status": "active"}),
        ("list, channel=chat", {"limit": 50, "offset": 0, "channel": "chat"}),
    ]
    for label, filters in cases:
        ms = await median_ms(lambda f=filters: page(**f), RUNS)  # type: ignore[misc]
        print(f"  {label:32s} {ms:8.1f} ms  (page + total count)")
    async with db.read() as uow:
        rows_, _ = await SessionQueries(uow, tenant.id).filtered(
            project_id=pid, limit=1, offset=rows // 4
        )
    target = rows_[0].id

    async def get() -> None:
        async with db.read() as uow:
            await SessionQueries(uow, tenant.id).in_project(pid, target)

    print(f"  {'get by id':32s} {await median_ms(get, RUNS):8.1f} ms")


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    url = sys.argv[2] if len(sys.argv) > 2 else None
    if url == "pg":
        url = os.environ.get("CHATPLANE_TEST_DATABASE_URL") or None
    asyncio.run(run(rows, url))


if __name__ == "__main__":
    main()
