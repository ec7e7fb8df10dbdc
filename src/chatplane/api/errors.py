"""Domain errors -> gRPC status, in exactly one place (AIP-193: Status + ErrorInfo)."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

from chatplane.api.context import HTTP_STATUS_HEADER
from chatplane.errors import ChatplaneError

ERROR_DOMAIN = "chatplane"

Metadata = tuple[tuple[str, str | bytes], ...]


def to_status(
    exc: BaseException, extra_headers: dict[str, str] | None = None
) -> tuple[grpc.StatusCode, str, Metadata]:
    """The code, message and trailing metadata that report `exc` to the caller.

    Unexpected exceptions become INTERNAL with a generic text: no details leak.
    """
    headers = dict(extra_headers or {})
    if isinstance(exc, ChatplaneError):
        code, message, reason = exc.code, exc.message, exc.reason
        metadata = exc.metadata
        headers.update(exc.headers)
        if exc.http_status is not None:
            headers[HTTP_STATUS_HEADER] = str(exc.http_status)
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
