"""Domain errors. Services raise these; `api/errors.py` alone maps them to gRPC codes,
`google.rpc.ErrorInfo`, HTTP statuses and response headers.

Each error carries a kind (what went wrong, transport-neutral), an UPPER_SNAKE reason a
client can branch on, a message that is safe to show the caller, and optionally the field
at fault, extra ErrorInfo metadata and a retry hint in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import ClassVar


class ErrorKind(StrEnum):
    """Transport-neutral error kinds; the API layer picks status codes from these."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    GONE = "GONE"  # existed, now retired
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    INTERNAL = "INTERNAL"


class ChatplaneError(Exception):
    """Base class of errors that reach the caller with their own kind and text."""

    kind: ClassVar[ErrorKind] = ErrorKind.INTERNAL
    reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        field: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.field = field
        # ErrorInfo.metadata: machine-readable details; the offending field is one of them.
        self.metadata = dict(metadata or {})
        if field:
            self.metadata.setdefault("field", field)
        self.retry_after = retry_after  # whole seconds, when a retry later may succeed


class InvalidArgument(ChatplaneError):
    kind = ErrorKind.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"


class InvalidFields(InvalidArgument):
    """Invalid input with several problems at once (compile errors): each one a
    `(field, description)` violation, reported as `google.rpc.BadRequest`."""

    def __init__(
        self,
        message: str,
        violations: Sequence[tuple[str, str]],
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.violations = tuple(violations)


class NotFound(ChatplaneError):
    kind = ErrorKind.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(ChatplaneError):
    kind = ErrorKind.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class Unauthenticated(ChatplaneError):
    kind = ErrorKind.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(ChatplaneError):
    kind = ErrorKind.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class ResourceExhausted(ChatplaneError):
    kind = ErrorKind.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"


class RateLimited(ResourceExhausted):
    """A rate limit said no; the window's figures become `x-ratelimit-*` headers."""

    reason = "RATE_LIMIT_EXCEEDED"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        limit: int,
        reset_seconds: int,
        retry_after: int,
    ) -> None:
        super().__init__(message, reason=reason, retry_after=retry_after)
        self.limit = limit
        self.reset_seconds = reset_seconds


class FailedPrecondition(ChatplaneError):
    kind = ErrorKind.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class Gone(ChatplaneError):
    """A resource that existed but is retired."""

    kind = ErrorKind.GONE
    reason = "GONE"


class Unavailable(ChatplaneError):
    kind = ErrorKind.UNAVAILABLE
    reason = "UNAVAILABLE"


class DeadlineExceeded(ChatplaneError):
    kind = ErrorKind.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class Unimplemented(ChatplaneError):
    kind = ErrorKind.UNIMPLEMENTED
    reason = "UNIMPLEMENTED"
