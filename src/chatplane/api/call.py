"""Per-call context: the authenticated principal and response metadata, in ContextVars."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import grpc

from chatplane.iam.auth import Principal


def request_headers(ctx: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    """The call's text metadata by name. gRPC metadata keys arrive lower-case (HTTP/2
    requires it, grpc core enforces it); binary (`-bin`) values are bytes and left out."""
    return {key: value for key, value in ctx.invocation_metadata() or () if type(value) is str}


@dataclass
class CallState:
    """What the interceptor knows about the current call."""

    method: str
    request_id: str
    principal: Principal | None = None
    # Sent with the response: initial metadata on success, trailing on errors.
    response_headers: dict[str, str] = field(default_factory=dict)


_call: ContextVar[CallState] = ContextVar("chatplane_call")


def begin(state: CallState) -> None:
    _call.set(state)


def current() -> CallState:
    return _call.get()


def principal() -> Principal:
    """The caller; the interceptor has authenticated every chatplane method."""
    found = _call.get().principal
    if found is None:  # pragma: no cover - guarded by the interceptor's scope table
        raise RuntimeError("no authenticated principal for this call")
    return found


HTTP_STATUS_HEADER = "x-chatplane-http-status"


def set_http_status(status: int) -> None:
    """Ask the REST gateway to answer with this HTTP status (e.g. 204); gRPC ignores it."""
    _call.get().response_headers[HTTP_STATUS_HEADER] = str(status)
