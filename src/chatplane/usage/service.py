"""Usage: recording every LLM call (batched off the hot path) and exact reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chatplane.errors import InvalidArgument
from chatplane.kit.batch import BatchWriter
from chatplane.storage.db import Database
from chatplane.usage.repository import UsageInserts, UsageRepository
from chatplane.usage.types import UsageReport, UsageRow


class UsageWriter(BatchWriter[UsageRow]):
    """Usage rows, bulk-inserted in batches (see BatchWriter)."""

    def __init__(self, db: Database, *, batch_size: int = 200, interval: float = 0.25) -> None:
        self._db = db
        super().__init__(
            self._insert, name="usage-writer", batch_size=batch_size, interval=interval
        )

    async def _insert(self, rows: list[UsageRow]) -> None:
        async with self._db.uow() as uow:
            await UsageInserts(uow).insert_rows(rows)


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
