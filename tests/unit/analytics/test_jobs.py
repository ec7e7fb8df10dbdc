"""Durable jobs: claimed once, a restart mid-job re-queues it, repeated restarts fail it
with a reason; the vendor's date conventions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatplane.analytics import jobs
from chatplane.analytics.types import date_window, percentage
from chatplane.errors import InvalidArgument
from chatplane.storage.db import Database


@pytest.fixture
async def db(database_url: str) -> Any:
    database = Database(database_url)
    await database.migrate()
    yield database
    await database.dispose()


async def _ok(job: jobs.Job, progress: jobs.Progress) -> dict[str, Any]:
    await progress(50)
    return {"echo": job.params["n"]}


async def test_claim_once_and_restart_recovery(db: Database) -> None:
    first = jobs.JobRunner(db, lease_seconds=30)
    second = jobs.JobRunner(db, lease_seconds=30)
    for runner in (first, second):
        runner.register("t", _ok)
    row = await jobs.enqueue(
        db, tenant_id="ten", project_id="p", kind="t", params={"n": 1}, created_by="k"
    )
    claimed = await first.claim()
    assert claimed is not None and claimed.id == row.id
    assert await second.claim() is None  # exactly once
    # The process dies mid-job: nothing happens until the lease expires, then the job is
    # queued again and another runner finishes it.
    assert await second.recover() == 0
    later = datetime.now(UTC) + timedelta(seconds=31)
    assert await second.recover(now=later) == 1
    again = await second.claim()
    assert again is not None and again.id == row.id
    await second.run_now(again)
    done = await jobs.load(db, "ten", row.id)
    assert done is not None and done.status == jobs.SUCCEEDED and done.percentage == 100
    assert done.attempts == 2 and '"echo": 1' in done.result


async def test_repeatedly_interrupted_job_fails_with_a_reason(db: Database) -> None:
    runner = jobs.JobRunner(db, lease_seconds=30)
    runner.register("t", _ok)
    row = await jobs.enqueue(
        db, tenant_id="ten", project_id="p", kind="t", params={"n": 1}, created_by="k"
    )
    now = datetime.now(UTC)
    for i in range(jobs.MAX_ATTEMPTS):
        assert await runner.claim() is not None
        await runner.recover(now=now + timedelta(seconds=31 * (i + 1)))
    failed = await jobs.load(db, "ten", row.id)
    assert failed is not None and failed.status == jobs.FAILED
    assert "Interrupted by a server restart" in failed.error


def test_date_window_defaults_and_limits() -> None:
    now = datetime(2024, 5, 10, 12, tzinfo=UTC)
    w = date_window(None, None, now=now, max_days=7)
    assert (w.start, w.end) == (now - timedelta(days=7), now)
    w = date_window("2024-05-01", None, now=now, max_days=7)
    assert w.end == datetime(2024, 5, 8, tzinfo=UTC)
    w = date_window("2024-05-01", "2024-05-02", now=now, max_days=7)
    assert w.end == datetime(2024, 5, 3, tzinfo=UTC)  # a bare dateTo includes that day
    with pytest.raises(InvalidArgument, match="may not exceed 7 days"):
        date_window("2024-05-01", "2024-05-09", now=now, max_days=7)
    assert percentage(1, 3) == "33.33" and percentage(1, 1) == 100 and percentage(0, 0) == 0


async def test_the_runner_survives_database_failures_without_gaining_slots(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = jobs.JobRunner(db, concurrency=1, poll_seconds=0.01, lease_seconds=0.05)
    runner.register("t", _ok)
    real_recover = runner.recover
    failures = 3

    async def flaky_recover(**kwargs: Any) -> int:  # the database is down at first
        nonlocal failures
        if failures:
            failures -= 1
            raise OSError("database unreachable")
        return await real_recover(**kwargs)

    monkeypatch.setattr(runner, "recover", flaky_recover)
    runner.start()
    try:
        row = await jobs.enqueue(
            db, tenant_id="ten", project_id="p", kind="t", params={"n": 2}, created_by="k"
        )
        runner.wake()
        for _ in range(500):  # the loop outlived the failures and ran the job
            done = await jobs.load(db, "ten", row.id)
            if done is not None and done.status == jobs.SUCCEEDED:
                break
            await asyncio.sleep(0.01)
        assert done is not None and done.status == jobs.SUCCEEDED
        assert failures == 0
        # One slot, as configured: a failed recovery never released an extra one.
        assert runner._slots._value <= 1
    finally:
        await runner.aclose()
