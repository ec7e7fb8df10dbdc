"""Usage: recording every LLM call (batched off the hot path) and exact reports."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from chatplane.errors import InvalidArgument
from chatplane.kit.batch import BatchWriter
from chatplane.observability import metrics
from chatplane.storage.db import Database
from chatplane.usage.repository import SqliteUsageInserts, UsageInserts, UsageRepository
from chatplane.usage.types import UsageReport, UsageRow


class UsageWriter(BatchWriter[UsageRow]):
    """Usage rows, bulk-inserted by group commit (see BatchWriter): `await write(row)`
    returns once the row is committed, so a call is acknowledged only after its usage is
    durable; concurrent calls share one insert."""

    def __init__(self, db: Database, *, retry_delay: float = 1.0) -> None:
        self._db = db
        self._sqlite = (
            SqliteUsageInserts(db.engine) if SqliteUsageInserts.supports(db.engine) else None
        )
        super().__init__(self._insert, name="usage-writer", retry_delay=retry_delay)

    def record(self, item: UsageRow) -> None:
        super().record(item)
        metrics.usage_queue_depth(len(self._pending))

    async def _insert(self, rows: list[UsageRow]) -> None:
        started = time.perf_counter()
        try:
            if self._sqlite is not None:
                await self._sqlite.insert_rows(rows)
                return
            async with self._db.uow() as uow:
                await UsageInserts(uow).insert_rows(rows)
        finally:
            metrics.usage_flushed(time.perf_counter() - started)
            metrics.usage_queue_depth(len(self._pending))

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            if self._sqlite is not None:
                await self._sqlite.aclose()


def parse_date(value: str, field: str, *, end: bool) -> datetime | None:
    """ISO 8601 date or time; a bare end date includes that whole day."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if end and len(value) == 10:  # yyyy-mm-dd
            moment += timedelta(days=1)
        return moment.astimezone(UTC)
    except ValueError:
        raise InvalidArgument(
            f"Invalid request: {field} must be an ISO 8601 date or time", field=field
        ) from None
    except OverflowError:  # 9999-12-31 plus a day, or shifted past year 9999 by its offset
        raise InvalidArgument(f"Invalid request: {field} is out of range", field=field) from None


class UsageService:
    def __init__(self, db: Database, writer: UsageWriter) -> None:
        self._db = db
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
        async with self._db.read() as uow:
            repo = UsageRepository(uow, tenant_id)
            (summary,) = await repo.totals(project_id, start=start, end=end, by_model=False)
            by_model = (
                await repo.totals(project_id, start=start, end=end, by_model=True)
                if group_by == "model"
                else []
            )
        return UsageReport(summary, by_model)
