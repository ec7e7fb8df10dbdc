"""Domain errors -> gRPC status, in exactly one place (AIP-193: Status + ErrorInfo).

Kinds map to gRPC codes; the REST gateway derives the HTTP status from the code, except
where a kind needs another one (GONE: 410), which travels in a response header that
Envoy's Lua filter applies. Retry hints become `retry-after` (and, for rate limits, the
`x-ratelimit-*` headers).
"""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

from chatplane.api.call import HTTP_STATUS_HEADER
from chatplane.errors import ChatplaneError, ErrorKind, RateLimited

ERROR_DOMAIN = "chatplane"

Metadata = tuple[tuple[str, str | bytes], ...]

CODES: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.GONE: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorKind.UNIMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}

# Kinds whose HTTP status is not the one the transcoder derives from the gRPC code.
HTTP_STATUS: dict[ErrorKind, int] = {ErrorKind.GONE: 410}


def _headers(exc: ChatplaneError) -> dict[str, str]:
    out: dict[str, str] = {}
    status = HTTP_STATUS.get(exc.kind)
    if status is not None:
        out[HTTP_STATUS_HEADER] = str(status)
    if isinstance(exc, RateLimited):
        out.update(
            {
                "x-ratelimit-limit": str(exc.limit),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(exc.reset_seconds),
            }
        )
    if exc.retry_after is not None:
        out["retry-after"] = str(exc.retry_after)
    return out


def to_status(
    exc: BaseException, extra_headers: dict[str, str] | None = None
) -> tuple[grpc.StatusCode, str, Metadata]:
    """The code, message and trailing metadata that report `exc` to the caller.

    Unexpected exceptions become INTERNAL with a generic text: no details leak.
    """
    headers = dict(extra_headers or {})
    if isinstance(exc, ChatplaneError):
        code, message, reason = CODES[exc.kind], exc.message, exc.reason
        metadata = exc.metadata
        headers.update(_headers(exc))
    else:
        code, message, reason, metadata = grpc.StatusCode.INTERNAL, "Internal error", "INTERNAL", {}
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(
        error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata)
    )
    trailing: list[tuple[str, str | bytes]] = [
        ("grpc-status-details-bin", status.SerializeToString())
    ]
    trailing.extend(sorted(headers.items()))
    return code, message, tuple(trailing)
