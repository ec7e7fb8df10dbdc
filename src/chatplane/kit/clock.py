"""Time helpers: aware UTC now and the RFC 3339 form the API prints."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Timezone-aware now in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str:
    """RFC 3339 with milliseconds and a `Z`, as the API prints times; empty for None."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
