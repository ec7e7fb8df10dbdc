"""Upstream failures -> domain errors, with whether a retry may help and how soon.

Notes on SDK 2.x / API version 2026-10-21:
- an `event: error` inside a 200 stream is raised as the `APIStatusError` the SDK would
  raise (`status_code == 200`; the error kind only in `exc.type`);
- transport failures while reading a stream body are raw `httpx2` exceptions (not wrapped
  in `APIConnectionError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import anthropic
import httpx2  # the SDK's HTTP layer; stream-body read errors surface as its exceptions

from chatplane.errors import (
    ChatplaneError,
    DeadlineExceeded,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)


class IncompleteStream(Exception):
    """The upstream stream ended without message_stop."""


class BadResponse(Exception):
    """A 2xx body (JSON or SSE event) that is not what the Messages API sends."""


# Everything an upstream call can fail with; classify() decides what each one means.
UPSTREAM_EXCEPTIONS = (anthropic.APIError, httpx2.HTTPError, IncompleteStream, BadResponse)


@dataclass(frozen=True, slots=True)
class Failure:
    error: ChatplaneError
    retryable: bool
    retry_after: float | None = None  # seconds, from the upstream response headers


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The upstream's retry hint (`retry-after-ms`, else `retry-after` in seconds), if any."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) * scale
        except ValueError:
            continue  # an HTTP-date: treat as absent
        if value >= 0:
            return value
    return None


def _unavailable() -> Unavailable:
    return Unavailable(
        "The model provider is unavailable or overloaded; try again later",
        reason="UPSTREAM_UNAVAILABLE",
    )


def _timeout() -> DeadlineExceeded:
    return DeadlineExceeded("The model provider did not answer in time", reason="UPSTREAM_TIMEOUT")


def _unexpected() -> Failure:
    return Failure(
        Unavailable("The model provider sent an unexpected response", reason="UPSTREAM_ERROR"),
        retryable=False,
    )


def _not_configured(what: str, reason: str) -> Failure:
    return Failure(Unavailable(f"Runtime not configured: {what}", reason=reason), retryable=False)


def classify(exc: BaseException) -> Failure:
    """Map an SDK / transport exception to a domain error and whether a retry may help."""
    if isinstance(exc, IncompleteStream):
        return Failure(_unavailable(), retryable=True)
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return Failure(_timeout(), retryable=True)
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return Failure(_unavailable(), retryable=True)
    if not isinstance(exc, anthropic.APIStatusError):
        return _unexpected()
    status = exc.status_code
    kind = exc.type or ""  # error.type of the body; the only signal for in-stream errors
    retry_after = retry_after_seconds(exc.response.headers)
    if status == 429 or kind == "rate_limit_error":
        metadata = {"retry_after_seconds": f"{retry_after:g}"} if retry_after is not None else None
        return Failure(
            ResourceExhausted(
                "The model provider is rate limiting requests; try again later",
                reason="UPSTREAM_RATE_LIMITED",
                metadata=metadata,
            ),
            retryable=True,
            retry_after=retry_after,
        )
    if status in (401, 403) or kind in ("authentication_error", "permission_error"):
        return _not_configured(
            "the model provider rejected the configured credentials", "UPSTREAM_AUTH"
        )
    if status == 402 or kind == "billing_error":
        return _not_configured("the model provider account cannot be billed", "UPSTREAM_BILLING")
    if status in (408, 504) or kind == "timeout_error":
        return Failure(_timeout(), retryable=True, retry_after=retry_after)
    if status >= 500 or kind in ("api_error", "overloaded_error"):
        return Failure(_unavailable(), retryable=True, retry_after=retry_after)
    if 400 <= status < 500 or kind:
        detail = exc.api_message or exc.message
        return Failure(
            InvalidArgument(
                f"The model provider rejected the request: {detail}",
                reason="UPSTREAM_INVALID_REQUEST",
            ),
            retryable=False,
        )
    return _unexpected()


def describe(exc: BaseException, limit: int = 160) -> str:
    """`ExceptionClass: message` on one line, shortened, for log lines.

    A status error reads `<status> <error.message of the body>` rather than the SDK's
    message, which repeats the whole body.
    """
    raw = str(exc)
    if isinstance(exc, anthropic.APIStatusError) and exc.api_message:
        raw = f"{exc.status_code} {exc.api_message}"
    text = " ".join(raw.split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
