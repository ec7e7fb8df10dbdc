"""One interceptor for every chatplane RPC: authentication, scopes, per-tenant rate limits,
error -> status conversion and one structured access-log line per call.

It wraps each method handler, so the work runs in the handler's own task (ContextVars
set here are visible to servicers).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, NoReturn, cast

import grpc

from chatplane.api import call
from chatplane.api.errors import to_status
from chatplane.api.limits import check_request
from chatplane.errors import ChatplaneError
from chatplane.iam.auth import Authenticator
from chatplane.ratelimit import RateLimiter, admit

access_log = logging.getLogger("chatplane.access")
log = logging.getLogger("chatplane.api")

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncGenerator[Any, None]]

# Methods outside chatplane (health, reflection) are public.
PROTECTED_PREFIX = "/chatplane."


def _headers(ctx: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in ctx.invocation_metadata() or ():
        if isinstance(value, str):
            out[key.lower()] = value
    return out


class ApiInterceptor(grpc.aio.ServerInterceptor):
    """See the module docstring. `scopes` maps full method names to the scope they need."""

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        limiter: RateLimiter,
        scopes: Mapping[str, str],
    ) -> None:
        self._auth = authenticator
        self._limiter = limiter
        self._scopes = dict(scopes)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(PROTECTED_PREFIX):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, cast(UnaryBehavior, handler.unary_unary)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, cast(StreamBehavior, handler.unary_stream)),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # no client-streaming RPCs in the contract

    async def _admit(self, state: call.CallState, headers: dict[str, str]) -> None:
        """Authenticate, check the method's scope, count the call against the tenant."""
        scope = self._scopes.get(state.method)
        if scope is None:  # every chatplane method must be listed: deny by default
            raise ChatplaneError(f"No access policy for {state.method}")
        principal = await self._auth.authenticate(headers)
        state.principal = principal
        principal.require(scope)
        decision = await admit(
            self._limiter,
            principal.tenant_id,
            message="Rate limit exceeded",
            reason="RATE_LIMIT_EXCEEDED",
        )
        state.response_headers.update(decision.headers())

    def _start(self, method: str, headers: dict[str, str]) -> call.CallState:
        state = call.CallState(method, headers.get("x-request-id") or uuid.uuid4().hex)
        call.begin(state)
        return state

    async def _fail(
        self, ctx: grpc.aio.ServicerContext[Any, Any], state: call.CallState, exc: Exception
    ) -> NoReturn:
        if not isinstance(exc, ChatplaneError):
            log.exception("unhandled error in %s", state.method, exc_info=exc)
        code, message, trailing = to_status(exc, state.response_headers)
        ctx.set_code(code)  # abort() alone leaves code() unset for the access log
        await ctx.abort(code, message, trailing)

    def _wrap_unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        async def wrapped(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            headers = _headers(ctx)
            state = self._start(method, headers)
            try:
                check_request(request)  # before any auth or storage work
                await self._admit(state, headers)
                response = await behavior(request, ctx)
                await ctx.send_initial_metadata(tuple(state.response_headers.items()))
                return response
            except Exception as exc:
                await self._fail(ctx, state, exc)
            finally:
                _log(state, ctx, started)

        return wrapped

    def _wrap_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        async def wrapped(
            request: Any, ctx: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncGenerator[Any, None]:
            started = time.perf_counter()
            headers = _headers(ctx)
            state = self._start(method, headers)
            first = True
            try:
                check_request(request)  # before any auth or storage work
                await self._admit(state, headers)
                # aclosing: a client that goes away closes the servicer's stream at once
                # (and with it the upstream call), not whenever it is garbage-collected.
                async with contextlib.aclosing(behavior(request, ctx)) as messages:
                    async for message in messages:
                        if first:
                            # Headers go out with the first message, so an error raised
                            # before it is still a trailers-only status (a real HTTP error).
                            await ctx.send_initial_metadata(tuple(state.response_headers.items()))
                            first = False
                        yield message
            except Exception as exc:
                await self._fail(ctx, state, exc)
            finally:
                _log(state, ctx, started)

        return wrapped


def _log(state: call.CallState, ctx: grpc.aio.ServicerContext[Any, Any], started: float) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    code = ctx.code()
    name = code.name if isinstance(code, grpc.StatusCode) else "OK"
    if ctx.cancelled():
        name = "CANCELLED"
    access_log.info(
        json.dumps(
            {
                "method": state.method,
                "status": name,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "tenant": state.principal.tenant_id if state.principal else None,
                "subject": state.principal.subject if state.principal else None,
                "request_id": state.request_id,
            }
        )
    )
