"""The XO analytics vendor's shapes and rules: its rate limits and their messages, session
tags, job status records, period buckets. Pure functions (the limiter call aside)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from chatplane.analytics import jobs
from chatplane.analytics.types import Window
from chatplane.errors import InvalidArgument, RateLimited, Unavailable
from chatplane.kit.clock import iso
from chatplane.ratelimit import RateLimiter
from chatplane.ratelimit.windows import RateLimiterUnavailable
from chatplane.sessions.record import tag_list
from chatplane.storage.models import AnalyticsJob

MINUTE_MESSAGE = (
    "You've exceeded the per-minute rate limit. Please wait for sometime before retrying."
)
HOUR_MESSAGE = "You've exceeded the hourly rate limit. Please wait for sometime before retrying."


async def vendor_limit(limiter: RateLimiter | None, key: str) -> None:
    """The vendor's rolling per-bot (or per-request-id) limits: 60 a minute, 1800 an
    hour, each with its own message; 429 with Retry-After."""
    if limiter is None:
        return
    try:
        decision = await limiter.hit(key)
    except RateLimiterUnavailable as exc:
        raise Unavailable("Rate limiter unavailable", reason="RATE_LIMITER_DOWN") from exc
    if not decision.allowed:
        hourly = decision.window_seconds >= 3600
        raise RateLimited(
            HOUR_MESSAGE if hourly else MINUTE_MESSAGE,
            reason="HOURLY_RATE_LIMIT_EXCEEDED" if hourly else "MINUTE_RATE_LIMIT_EXCEEDED",
            limit=decision.limit,
            reset_seconds=decision.reset_seconds,
            retry_after=decision.retry_after,
        )


def ms(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None


def session_tags(raw: str) -> dict[str, list[dict[str, Any]]]:
    """`sessions.tags`: a JSON list (each `"name"` or `"name=value"`, or `{name, value}`:
    session tags) or an object with `userTags`, `sessionTags`, `altText`."""
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        value = []
    if isinstance(value, dict):
        return {
            "userTags": tag_list(value.get("userTags")),
            "sessionTags": tag_list(value.get("sessionTags")),
            "altText": list(value.get("altText") or []),
        }
    return {"userTags": [], "sessionTags": tag_list(value), "altText": []}


def tag_filter(value: Any) -> tuple[tuple[str, str], ...]:
    """`tags`: `{name: value}`, `[{name, value}]` or `{userTags|sessionTags: [...]}`."""
    if value is None or value in ({}, []):
        return ()
    pairs: list[tuple[str, str]] = []
    if isinstance(value, dict) and ("userTags" in value or "sessionTags" in value):
        items = [*(value.get("userTags") or []), *(value.get("sessionTags") or [])]
    elif isinstance(value, dict):
        items = [{"name": k, "value": v} for k, v in value.items()]
    elif isinstance(value, list):
        items = value
    else:
        raise InvalidArgument(
            "tags must be an object or an array", field="tags", reason="INVALID_TAGS"
        )
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidArgument("each tag needs a name", field="tags", reason="INVALID_TAGS")
        raw = item.get("value")
        pairs.append((item["name"], "" if raw is None else str(raw)))
    return tuple(pairs[:20])


def range_label(window: Window) -> str:
    last = (window.end - timedelta(microseconds=1)).date()
    return f"{window.start.date().isoformat()} - {last.isoformat()}"


def lower_status(status: str) -> str:
    return {"succeeded": "success", "failed": "failed"}.get(status, "in_progress")


def vendor_status(status: str) -> str:
    return {"succeeded": "SUCCESS", "failed": "FAILED"}.get(status, "IN_PROGRESS")


def job_record(
    row: AnalyticsJob, *, owner_key: str, owner: str, job_type: str, count: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": vendor_status(row.status),
        "percentageComplete": 100 if row.status == jobs.SUCCEEDED else row.percentage,
        owner_key: owner,
        "createdBy": row.created_by,
        "jobType": job_type,
        "action": "QUERY",
    }
    if count:
        out["countOfDockStatuses"] = 1
    out |= {
        "expireAt": iso(row.expire_at),
        "statusLogs": [],
        "_id": row.id,
        "lMod": iso(row.updated_at.replace(microsecond=0)),
        "createdOn": iso(row.created_at),
        "requestedTime": iso(row.created_at),
        "__v": 0,
    }
    return out


def bucket_iso(key: str, period: str) -> str:
    if period == "month":
        return f"{key}-01T00:00:00.000Z"
    if period == "day":
        return f"{key}T00:00:00.000Z"
    return f"{key[:10]}T{key[11:13]}:00:00.000Z"


def bucket_count(window: Window, period: str) -> int:
    span = window.end - window.start
    if period == "hour":
        return max(1, -(-int(span.total_seconds()) // 3600))
    if period == "day":
        return max(1, -(-int(span.total_seconds()) // 86400))
    s, e = window.start, window.end - timedelta(microseconds=1)
    return max(1, (e.year - s.year) * 12 + e.month - s.month + 1)


def integration(provider: str) -> str:
    return {"anthropic": "Anthropic", "local": "chatplane-local"}.get(provider, provider)


def json_or_empty(text: str | None) -> Any:
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return {"text": text}


def llm_log_record(r: sa.Row[Any]) -> dict[str, Any]:
    """One `getLLMUsageLogs` entry from a usage row."""
    end = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC)
    start = end - timedelta(milliseconds=r.latency_ms)
    ok = r.status == "ok"
    prompt = "Default"
    return {
        "Prompt Name": prompt,
        "Integration": integration(r.provider),
        "start Date": iso(start),
        "End Date": iso(end),
        "Time Taken": r.latency_ms,
        "statusCode": 200 if ok else (499 if r.status == "cancelled" else 500),
        "Bot ID": r.project_id,
        "User ID": r.user_id or "",
        "Feature Name ": r.feature,
        "Model Name": r.model,
        "Channel Name": r.channel or "api",
        "Description": r.description or (r.agent_name or ""),
        "task Id": r.task_id or (r.agent_name or ""),
        "Status": "Success" if ok else "Failure",
        "Payload Details": {
            "Prompt Name": prompt,
            "Request Payload": json_or_empty(r.request_json),
            "Response Payload": json_or_empty(r.response_json),
            "Request Tokens": r.input_tokens,
            "Response Tokens": r.output_tokens,
        },
    }
