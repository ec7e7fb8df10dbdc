"""Analytics domain types and the vendor's (Kore.ai XO) request conventions: dates,
numbers sent as strings, spans with a documented maximum, and the JSON they print."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chatplane.errors import InvalidArgument

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Containment as getSessions prints it.
SELF_SERVICE, AGENT, DROP_OFF = "selfService", "agent", "dropOff"
CONTAINMENT_TYPES = (SELF_SERVICE, AGENT, DROP_OFF)


def parse_body(data: bytes, *, array: bool = False) -> Any:
    """The request's JSON body; empty means `{}` (or `[]`). Anything else is 400."""
    text = data.decode("utf-8", errors="replace").strip()
    if not text:
        return [] if array else {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        raise InvalidArgument("Request body is not valid JSON", reason="INVALID_JSON") from None
    if array and not isinstance(value, list):
        raise InvalidArgument("Request body must be a JSON array", reason="INVALID_BODY")
    if not array and not isinstance(value, dict):
        raise InvalidArgument("Request body must be a JSON object", reason="INVALID_BODY")
    return value


def dumps(value: Any) -> bytes:
    """Compact JSON in the order the dicts were built (the vendor's key order)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Instant:
    """A parsed date: the moment, and whether the client gave a bare `yyyy-mm-dd`."""

    moment: datetime
    date_only: bool


def parse_date(value: Any, name: str) -> Instant | None:
    """`yyyy-mm-dd` (midnight UTC) or ISO 8601 (`Z` or an offset; naive is UTC)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidArgument(
            f"{name} must be a date (yyyy-mm-dd or ISO 8601)", field=name, reason="INVALID_DATE"
        )
    text = value.strip()
    try:
        if _DATE_ONLY.match(text):
            return Instant(
                datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC), True
            )
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(
            f"{name} must be a date (yyyy-mm-dd or ISO 8601)", field=name, reason="INVALID_DATE"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Instant(moment.astimezone(UTC), False)


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time range [start, end)."""

    start: datetime
    end: datetime


def date_window(
    date_from: Any,
    date_to: Any,
    *,
    now: datetime,
    max_days: int,
    default_days: int = 7,
    names: tuple[str, str] = ("dateFrom", "dateTo"),
) -> Window:
    """The vendor's defaults: from = to - 7 days, to = from + 7 days, neither: the last
    7 days up to now. A bare `dateTo` date includes that whole day. The span (as the client
    wrote it) may not exceed `max_days`: 400 saying the limit."""
    start, end = parse_date(date_from, names[0]), parse_date(date_to, names[1])
    span = timedelta(days=default_days)
    if start is None and end is None:
        return Window(now - span, now)
    if start is None:
        assert end is not None
        start = Instant(end.moment - span, False)
    if end is None:
        end = Instant(start.moment + span, False)
    if end.moment < start.moment:
        raise InvalidArgument(
            f"{names[1]} must not be before {names[0]}", field=names[1], reason="INVALID_DATE_RANGE"
        )
    if end.moment - start.moment > timedelta(days=max_days):
        raise InvalidArgument(
            f"The date range may not exceed {max_days} days",
            field=names[1],
            reason="DATE_RANGE_TOO_LARGE",
        )
    stop = end.moment + timedelta(days=1) if end.date_only else end.moment
    return Window(start.moment, stop)


def as_int(value: Any, name: str, *, default: int, low: int, high: int) -> int:
    """A number that clients also send as a string ("50")."""
    if value is None or value == "":
        return default
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or (isinstance(value, float) and value != int(value)):
        raise InvalidArgument(f"{name} must be a whole number", field=name, reason="INVALID_NUMBER")
    if number < low or number > high:
        raise InvalidArgument(
            f"{name} must be between {low} and {high}", field=name, reason="OUT_OF_RANGE"
        )
    return number


def str_list(value: Any, name: str, *, max_items: int = 1000) -> tuple[str, ...]:
    """A list of strings (a single string counts as a list of one)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(
            f"{name} must be an array of strings", field=name, reason="INVALID_LIST"
        )
    if len(value) > max_items:
        raise InvalidArgument(
            f"{name} accepts at most {max_items} values", field=name, reason="TOO_MANY_VALUES"
        )
    return tuple(value)


def percentage(part: int, whole: int) -> int | str:
    """The vendor's format: a number when whole (100, 0), else a string with two
    decimals ("33.33")."""
    if whole == 0:
        return 0
    value = round(part * 100 / whole, 2)
    return int(value) if value == int(value) else f"{value:.2f}"


@dataclass(frozen=True, slots=True)
class SessionQuery:
    """getSessions, parsed."""

    project_ids: tuple[str, ...] | None  # None: every project of the tenant
    window: Window
    skip: int
    limit: int
    user_id: str = ""
    session_type: str = ""  # interactive | non-interactive
    containment: str = ""
    call_id: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    session_ids: tuple[str, ...] = ()  # overrides every other filter
    by_ids: bool = False


@dataclass(frozen=True, slots=True)
class LlmLogQuery:
    """getLLMUsageLogs, parsed."""

    project_id: str
    window: Window
    skip: int
    limit: int
    channels: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    include_developer: bool = False
    features: tuple[str, ...] = ()
    task_id: str = ""
    sort_desc: bool | None = None  # Time Taken order; None: newest first
    extra: dict[str, Any] = field(default_factory=dict)
