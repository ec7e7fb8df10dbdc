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
from chatplane.errors import ChatplaneError, ErrorKind, InvalidFields, RateLimited

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

# Longest error message and ErrorInfo metadata value sent: a message that quotes a
# client's input (an unknown part type, a model name) must never echo it in full. The
# gRPC status travels in headers, and Envoy answers 502 for headers over its limit.
MAX_MESSAGE_CHARS = 300
MAX_METADATA_CHARS = 200


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


# Compile errors travel as google.rpc.BadRequest in the same header: at most this many
# field violations (each clipped like a message), about 20 KB at worst.
MAX_VIOLATIONS = 50

# Kinds whose HTTP status is not the one the transcoder derives from the gRPC code.
HTTP_STATUS: dict[ErrorKind, int] = {ErrorKind.GONE: 410}
# Sizes, not rates: RESOURCE_EXHAUSTED errors that are 413 over HTTP, by reason.
HTTP_STATUS_BY_REASON: dict[str, int] = {"ATTACHMENT_TOO_LARGE": 413, "RESPONSE_TOO_LARGE": 413}

# A RESOURCE_EXHAUSTED status is HTTP 429, and a 429 always says when to come back.
DEFAULT_RETRY_AFTER = 5


class ResponseTooLarge(ChatplaneError):
    """The reply would exceed the send limit: gRPC's RESOURCE_EXHAUSTED (its own code for
    an oversized message), HTTP 413 rather than 429 (a size, not a rate)."""

    kind = ErrorKind.RESOURCE_EXHAUSTED
    reason = "RESPONSE_TOO_LARGE"


def _headers(exc: ChatplaneError) -> dict[str, str]:
    out: dict[str, str] = {}
    status = HTTP_STATUS_BY_REASON.get(exc.reason) or HTTP_STATUS.get(exc.kind)
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
    elif exc.kind is ErrorKind.RESOURCE_EXHAUSTED and status is None:
        out["retry-after"] = str(DEFAULT_RETRY_AFTER)
    return out


def _bad_request(exc: InvalidFields) -> error_details_pb2.BadRequest:
    """Every violation as a BadRequest field violation, within the header budget: at most
    MAX_VIOLATIONS, each description clipped; a last one says how many were left out."""
    shown = exc.violations[:MAX_VIOLATIONS]
    out = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field=_clip(field, MAX_METADATA_CHARS),
                description=_clip(description, MAX_MESSAGE_CHARS),
            )
            for field, description in shown
        ]
    )
    left = len(exc.violations) - len(shown)
    if left:
        out.field_violations.add(
            field=_clip(shown[-1][0], MAX_METADATA_CHARS), description=f"... and {left} more"
        )
    return out


def to_status(
    exc: BaseException, extra_headers: dict[str, str] | None = None
) -> tuple[grpc.StatusCode, str, Metadata]:
    """The code, message and trailing metadata that report `exc` to the caller.

    Unexpected exceptions become INTERNAL with a generic text: no details leak.
    """
    headers = dict(extra_headers or {})
    if isinstance(exc, ChatplaneError):
        code, message, reason = CODES[exc.kind], _clip(exc.message, MAX_MESSAGE_CHARS), exc.reason
        metadata = {
            _clip(k, MAX_METADATA_CHARS): _clip(v, MAX_METADATA_CHARS)
            for k, v in exc.metadata.items()
        }
        headers.update(_headers(exc))
    else:
        code, message, reason, metadata = grpc.StatusCode.INTERNAL, "Internal error", "INTERNAL", {}
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(
        error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata)
    )
    if isinstance(exc, InvalidFields) and exc.violations:
        status.details.add().Pack(_bad_request(exc))
    trailing: list[tuple[str, str | bytes]] = [
        ("grpc-status-details-bin", status.SerializeToString())
    ]
    trailing.extend(sorted(headers.items()))
    return code, message, tuple(trailing)
