"""Usage records: written in batches off the hot path, aggregated exactly in SQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from chatplane.errors import InvalidArgument
from chatplane.storage.repositories import UsageRepository, UsageTotals

log = logging.getLogger("chatplane.usage")

# One usage_records row as column -> value (see storage.models.UsageRecord).
UsageRow = dict[str, Any]


class UsageWriter:
    """Buffers records and inserts them in batches from one background task.

    `record()` never awaits the database, so no call waits on a round trip and calls do
    not serialize behind a lock; `flush()` waits until everything recorded so far is
    stored, and `aclose()` flushes before returning (clean shutdown loses nothing).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        batch_size: int = 200,
        interval: float = 0.25,
    ) -> None:
        self._sessions = sessions
        self._batch_size = batch_size
        self._interval = interval
        self._pending: list[UsageRow] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one writer at a time; record() never takes it
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="usage-writer")

    def record(self, record: UsageRow) -> None:
        if self._closed:
            raise RuntimeError("usage writer is closed")
        self._pending.append(record)
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    async def flush(self) -> None:
        async with self._lock:
            while self._pending:
                batch, self._pending = (
                    self._pending[: self._batch_size * 5],
                    self._pending[self._batch_size * 5 :],
                )
                try:
                    async with self._sessions() as session:
                        await UsageRepository(session).insert_rows(batch)
                        await session.commit()
                except Exception:
                    # Keep the records for the next attempt rather than lose billing data.
                    self._pending[:0] = batch
                    raise

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("usage flush failed; %d records kept for retry", len(self._pending))
                await asyncio.sleep(1.0)

    async def aclose(self) -> None:
        """Stop the loop without cancelling a flush midway (a cancelled commit could lose
        or duplicate a batch), then store whatever is left."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()


def parse_date(value: str, field: str, *, end: bool) -> datetime | None:
    """ISO 8601 date or time; a bare end date includes that whole day."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(
            f"Invalid request: {field} must be an ISO 8601 date or time", field=field
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end and len(value) == 10:  # yyyy-mm-dd
        moment += timedelta(days=1)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class UsageReport:
    summary: UsageTotals
    by_model: list[UsageTotals]


class UsageService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], writer: UsageWriter) -> None:
        self._sessions = sessions
        self._writer = writer

    async def report(
        self,
        tenant_id: str,
        project_id: str,
        *,
        start_date: str,
        end_date: str,
        group_by: str,
    ) -> UsageReport:
        if group_by not in ("", "model"):
            raise InvalidArgument("Invalid request: groupBy must be 'model'", field="groupBy")
        start = parse_date(start_date, "startDate", end=False)
        end = parse_date(end_date, "endDate", end=True)
        if start and end and start >= end:
            raise InvalidArgument(
                "Invalid request: startDate must be before endDate", field="startDate"
            )
        await self._writer.flush()  # exact: include calls that finished a moment ago
        async with self._sessions() as session:
            repo = UsageRepository(session)
            (summary,) = await repo.totals(
                tenant_id, project_id, start=start, end=end, by_model=False
            )
            by_model = (
                await repo.totals(tenant_id, project_id, start=start, end=end, by_model=True)
                if group_by == "model"
                else []
            )
        return UsageReport(summary, by_model)
