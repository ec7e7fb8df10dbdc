"""Durable jobs (billing summary, containment report, suite import, suite run).

A job is a row in `analytics_jobs`: queued -> running -> succeeded | failed. Runners in
every server process claim queued rows one at a time (PostgreSQL: `SELECT ... FOR UPDATE
SKIP LOCKED`; SQLite: a guarded `UPDATE ... WHERE status = 'queued'`), so each job runs
exactly once; at most `concurrency` run at once per process. A running job renews its
lease (`updated_at`) while it works; a job whose lease expired (its process died) is put
back in the queue, up to MAX_ATTEMPTS times, then failed with a reason. Handlers are
idempotent (they compute a result from stored data), so a re-run is a resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from chatplane.errors import ChatplaneError
from chatplane.kit.clock import utcnow
from chatplane.storage.db import Database
from chatplane.storage.models import AnalyticsJob

log = logging.getLogger("chatplane.jobs")

J = AnalyticsJob.__table__  # type: ignore[attr-defined]

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
MAX_ATTEMPTS = 3
LEASE_SECONDS = 30.0
EXPIRE_MINUTES = 15  # the vendor's expireAt: createdOn + 15 minutes


@dataclass(frozen=True, slots=True)
class Job:
    """A job as a handler sees it."""

    id: str
    tenant_id: str
    project_id: str
    kind: str
    params: dict[str, Any]
    created_by: str


Progress = Callable[[int], Awaitable[None]]
Handler = Callable[[Job, Progress], Awaitable[dict[str, Any]]]


class JobFailed(Exception):
    """A handler's failure with a reason to show (the job's `error`)."""


def new_job_id(prefix: str = "ds") -> str:
    return f"{prefix}-{uuid.uuid4()}"


async def enqueue(
    db: Database,
    *,
    tenant_id: str,
    project_id: str,
    kind: str,
    params: dict[str, Any],
    created_by: str,
    job_id: str | None = None,
) -> AnalyticsJob:
    now = utcnow()
    row = AnalyticsJob(
        id=job_id or new_job_id(),
        tenant_id=tenant_id,
        project_id=project_id,
        kind=kind,
        status=QUEUED,
        params=json.dumps(params),
        created_by=created_by,
        created_at=now,
        updated_at=now,
        expire_at=now + timedelta(minutes=EXPIRE_MINUTES),
    )
    async with db.uow() as uow:
        uow.add(row)
    return row


class JobRunner:
    """Claims and runs queued jobs with bounded concurrency."""

    def __init__(
        self,
        db: Database,
        *,
        concurrency: int = 2,
        poll_seconds: float = 0.5,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._db = db
        self._handlers: dict[str, Handler] = {}
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._poll = poll_seconds
        self._lease = lease_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.worker_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="chatplane-jobs")

    async def aclose(self) -> None:
        """Stop claiming; running jobs are cancelled and left `running`: their lease
        expires and the next start (of any process) re-queues them."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._running):
            task.cancel()
        for task in list(self._running):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _loop(self) -> None:
        clock = asyncio.get_running_loop().time
        last_recover: float | None = None  # recovery runs at start and once a lease
        while True:
            try:
                if last_recover is None or clock() - last_recover > self._lease:
                    await self.recover()
                    last_recover = clock()
                await self._slots.acquire()
                try:
                    claimed = await self.claim()
                except BaseException:
                    self._slots.release()
                    raise
                if claimed is None:
                    self._slots.release()
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll)
                    continue
                task = asyncio.create_task(self._run(claimed))  # its end frees the slot
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database hiccuped (at start too): try again later
                log.exception("job runner")
                await asyncio.sleep(self._poll)

    async def recover(self, *, now: datetime | None = None) -> int:
        """Jobs whose lease expired: back to the queue, or failed after MAX_ATTEMPTS."""
        now = now or utcnow()
        stale = now - timedelta(seconds=self._lease)
        async with self._db.uow() as uow:
            conn = await uow.connection()
            failed = await conn.execute(
                sa.update(J)
                .where(J.c.status == RUNNING, J.c.updated_at < stale, J.c.attempts >= MAX_ATTEMPTS)
                .values(
                    status=FAILED,
                    error=f"Interrupted by a server restart {MAX_ATTEMPTS} times; giving up",
                    updated_at=now,
                    finished_at=now,
                )
            )
            requeued = await conn.execute(
                sa.update(J)
                .where(J.c.status == RUNNING, J.c.updated_at < stale)
                .values(status=QUEUED, claimed_by="", updated_at=now)
            )
        return int(failed.rowcount or 0) + int(requeued.rowcount or 0)

    async def claim(self) -> Job | None:
        """One queued job, now ours (running), or None."""
        kinds = list(self._handlers)
        if not kinds:
            return None
        now = utcnow()
        async with self._db.uow() as uow:
            conn = await uow.connection()
            pick = (
                sa.select(J.c.id)
                .where(J.c.status == QUEUED, J.c.kind.in_(kinds))
                .order_by(J.c.created_at)
                .limit(1)
            )
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            found = (await conn.execute(pick)).first()
            if found is None:
                return None
            done = await conn.execute(
                sa.update(J)
                .where(J.c.id == found[0], J.c.status == QUEUED)
                .values(
                    status=RUNNING,
                    claimed_by=self.worker_id,
                    attempts=J.c.attempts + 1,
                    updated_at=now,
                )
            )
            if not done.rowcount:
                return None  # another process took it
            row = (await conn.execute(sa.select(J).where(J.c.id == found[0]))).one()
        return Job(
            id=row.id,
            tenant_id=row.tenant_id,
            project_id=row.project_id,
            kind=row.kind,
            params=json.loads(row.params or "{}"),
            created_by=row.created_by,
        )

    async def _update(self, job_id: str, **values: Any) -> None:
        async with self._db.uow() as uow:
            conn = await uow.connection()
            await conn.execute(
                sa.update(J)
                .where(J.c.id == job_id, J.c.claimed_by == self.worker_id, J.c.status == RUNNING)
                .values(updated_at=utcnow(), **values)
            )

    async def run_now(self, job: Job) -> None:
        """Runs a claimed job to its end (tests call this directly)."""
        handler = self._handlers[job.kind]

        async def progress(percent: int) -> None:
            await self._update(job.id, percentage=max(0, min(99, percent)))

        async def renew() -> None:
            while True:
                await asyncio.sleep(self._lease / 3)
                await self._update(job.id)

        lease = asyncio.create_task(renew())
        try:
            result = await handler(job, progress)
        except (JobFailed, ChatplaneError) as exc:
            await self._update(job.id, status=FAILED, error=str(exc)[:2000], finished_at=utcnow())
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s failed", job.id)
            await self._update(
                job.id,
                status=FAILED,
                error="Internal error while running the job",
                finished_at=utcnow(),
            )
            return
        finally:
            lease.cancel()
        await self._update(
            job.id,
            status=SUCCEEDED,
            percentage=100,
            result=json.dumps(result),
            finished_at=utcnow(),
        )

    async def _run(self, job: Job) -> None:
        try:
            await self.run_now(job)
        finally:
            self._slots.release()


async def load(db: Database, tenant_id: str, job_id: str) -> AnalyticsJob | None:
    async with db.read() as uow:
        conn = await uow.connection()
        row = (
            await conn.execute(sa.select(J).where(J.c.tenant_id == tenant_id, J.c.id == job_id))
        ).first()
    return AnalyticsJob.model_validate(dict(row._mapping)) if row is not None else None


async def latest(db: Database, tenant_id: str, project_id: str, kind: str) -> AnalyticsJob | None:
    async with db.read() as uow:
        conn = await uow.connection()
        row = (
            await conn.execute(
                sa.select(J)
                .where(J.c.tenant_id == tenant_id, J.c.project_id == project_id, J.c.kind == kind)
                .order_by(J.c.created_at.desc())
                .limit(1)
            )
        ).first()
    return AnalyticsJob.model_validate(dict(row._mapping)) if row is not None else None
