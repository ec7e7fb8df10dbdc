"""Domain errors. Services raise these; the gRPC layer turns them into status codes in one place.

Each error carries a gRPC code name, an UPPER_SNAKE reason (google.rpc.ErrorInfo), a
message that is safe to show the caller, and optionally an HTTP status that the REST
gateway should use instead of the code's default (410, 204) plus response headers.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc


class ChatplaneError(Exception):
    """Base class of errors that reach the caller with their own code and text."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        http_status: int | None = None,
        headers: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.http_status = http_status
        self.headers = dict(headers or {})
        # ErrorInfo.metadata: machine-readable details such as the offending field.
        self.metadata = dict(metadata or {})


class InvalidArgument(ChatplaneError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(
        self, message: str, *, field: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message, reason=reason, metadata={"field": field} if field else None)


class NotFound(ChatplaneError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class Unauthenticated(ChatplaneError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(ChatplaneError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class ResourceExhausted(ChatplaneError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"


class Unavailable(ChatplaneError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class DeadlineExceeded(ChatplaneError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class FailedPrecondition(ChatplaneError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class Gone(FailedPrecondition):
    """A resource that existed but is retired: FAILED_PRECONDITION for gRPC, 410 over REST."""

    reason = "GONE"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message, reason=reason, http_status=410)


class AlreadyExists(ChatplaneError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class Unimplemented(ChatplaneError):
    code = grpc.StatusCode.UNIMPLEMENTED
    reason = "UNIMPLEMENTED"
