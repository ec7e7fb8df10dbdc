"""One interceptor for every chatplane RPC: authentication, scopes, per-tenant rate limits,
error -> status conversion and one structured access-log line per call.

It wraps each method handler, so the work runs in the handler's own task (ContextVars
set here are visible to servicers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, NoReturn, cast

import grpc

from chatplane.api import call
from chatplane.api.drain import Drain
from chatplane.api.errors import ResponseTooLarge, to_status
from chatplane.api.limits import check_request
from chatplane.errors import ChatplaneError, InvalidArgument, RateLimited, Unavailable
from chatplane.iam.auth import Authenticator
from chatplane.kit.admission import InflightLimiter
from chatplane.observability import logs, metrics
from chatplane.ratelimit import RateLimiter, admit

access_log = logging.getLogger("chatplane.access")
log = logging.getLogger("chatplane.api")

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncGenerator[Any, None]]

_SHUTTING_DOWN = "Server shutting down"

# Methods outside chatplane (health, reflection) are public.
PROTECTED_PREFIX = "/chatplane."


class UndecodableRequest:
    """Stands in for a request whose bytes protobuf refused (invalid UTF-8 in a string,
    nesting deeper than the decoder allows): the call answers 400 before authentication
    instead of grpc's own UNKNOWN with the exception class in its text."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def error(self) -> InvalidArgument:
        return InvalidArgument(self.message, reason="UNDECODABLE_REQUEST")


def _decode_failure(exc: Exception) -> UndecodableRequest:
    text = str(exc)
    if "UTF-8" in text:
        return UndecodableRequest("Invalid request: a text field is not valid UTF-8")
    if "Depth" in text or "deep" in text:
        return UndecodableRequest(
            "Invalid request: JSON nested too deeply (at most about 30 levels)"
        )
    return UndecodableRequest("Invalid request: the request could not be decoded")


def _safe_deserializer(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def run(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as exc:  # a client's mistake: no traceback, a 400
            return _decode_failure(exc)

    return run


def _check_decoded(request: Any) -> None:
    """Refuse an undecodable request, then check identifier/name limits."""
    if isinstance(request, UndecodableRequest):
        raise request.error()
    check_request(request)


class ApiInterceptor(grpc.aio.ServerInterceptor):
    """See the module docstring. `scopes` maps full method names to the scope they need."""

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        limiter: RateLimiter,
        scopes: Mapping[str, str],
        max_reply_bytes: int | None = None,
        drain: Drain | None = None,
        shutdown_messages: Mapping[str, Callable[[], Any]] | None = None,
        inflight: InflightLimiter | None = None,
        public_methods: frozenset[str] = frozenset(),
        open_methods: frozenset[str] = frozenset(),
    ) -> None:
        self._auth = authenticator
        # Methods anyone may call, without credentials, rate limits or shedding (probes,
        # metrics, the OpenAPI document): api/servicers/ops.py.
        self._open = open_methods
        # The only methods publishable (`pk_live_`) keys may call: the Chat API.
        self._public = public_methods
        self._limiter = limiter
        self._scopes = dict(scopes)
        # grpc's send limit: a larger reply is refused here with a clear status, instead of
        # grpc's own RESOURCE_EXHAUSTED (HTTP 429, no Retry-After, a traceback in the log).
        self._max_reply = max_reply_bytes
        # Streams still running at the end of the shutdown grace period end with the
        # method's last message (see api/drain.py).
        self._drain = drain or Drain()
        self._shutdown_messages = dict(shutdown_messages or {})
        # Calls in flight in this process: beyond the limit, 503 at once (before auth).
        self._inflight = inflight
        # method -> (the registry's handler, its wrapped handler): see intercept_service.
        self._wrapped: dict[
            str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]
        ] = {}

    def _check_size(self, message: Any) -> None:
        if self._max_reply is not None and message.ByteSize() > self._max_reply:
            raise ResponseTooLarge(
                f"Response too large: over the {self._max_reply // (1024 * 1024)} MiB limit; "
                "ask for less (a shorter input or a lower maxTokens)"
            )

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
        # grpc asks for the handler on every call; the wrapped one is built once per
        # method (the registry hands back the same handler object each time).
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, cast(UnaryBehavior, handler.unary_unary)),
                request_deserializer=_safe_deserializer(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, cast(StreamBehavior, handler.unary_stream)),
                request_deserializer=_safe_deserializer(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler  # no client-streaming RPCs in the contract

    async def _admit(self, state: call.CallState, headers: dict[str, str]) -> None:
        """Authenticate, check the method's scope, count the call against the tenant."""
        if state.method in self._open:
            return
        scope = self._scopes.get(state.method)
        if scope is None:  # every chatplane method must be listed: deny by default
            raise ChatplaneError(f"No access policy for {state.method}")
        principal = await self._auth.authenticate(headers)
        state.principal = principal
        principal.require(scope)
        principal.require_route(
            public_route=state.method in self._public, origin=headers.get("origin", "")
        )
        decision = await admit(
            self._limiter,
            principal.tenant_id,
            message="Rate limit exceeded",
            reason="RATE_LIMIT_EXCEEDED",
        )
        state.response_headers.update(decision.headers())

    def _enter(self, method: str) -> bool:
        """Take an in-flight slot or shed the call; True when a slot must be released."""
        if self._inflight is None or method in self._open:
            return False
        if not self._inflight.try_acquire():
            metrics.rpc_shed()
            raise self._inflight.refusal()
        return True

    def _start(self, method: str, headers: dict[str, str]) -> call.CallState:
        state = call.CallState(method, headers.get("x-request-id") or uuid.uuid4().hex)
        call.begin(state)
        logs.bind_request_id(state.request_id)  # on every log line of this call
        metrics.rpc_started()
        return state

    async def _fail(
        self, ctx: grpc.aio.ServicerContext[Any, Any], state: call.CallState, exc: Exception
    ) -> NoReturn:
        if not isinstance(exc, ChatplaneError):
            log.exception("unhandled error in %s", state.method, exc_info=exc)
        elif isinstance(exc, RateLimited):
            metrics.rate_limited(exc.reason)
        code, message, trailing = to_status(exc, state.response_headers)
        ctx.set_code(code)  # abort() alone leaves code() unset for the access log
        await ctx.abort(code, message, trailing)

    def _wrap_unary(self, method: str, behavior: UnaryBehavior) -> UnaryBehavior:
        async def wrapped(request: Any, ctx: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            headers = call.request_headers(ctx)
            state = self._start(method, headers)
            held = False
            try:
                _check_decoded(request)  # before any auth or storage work
                held = self._enter(method)
                await self._admit(state, headers)
                response = await behavior(request, ctx)
                self._check_size(response)
                # Trailers leave in one batch with the reply and the status (a separate
                # send_initial_metadata would cost a round on the loop); Envoy's
                # status.lua moves them into a REST response's headers.
                ctx.set_trailing_metadata(tuple(state.response_headers.items()))
                return response
            except Exception as exc:
                await self._fail(ctx, state, exc)
            finally:
                if held:
                    self._release()
                _log(state, ctx, started)

        return wrapped

    def _release(self) -> None:
        if self._inflight is not None:
            self._inflight.release()

    def _wrap_stream(self, method: str, behavior: StreamBehavior) -> StreamBehavior:
        async def wrapped(
            request: Any, ctx: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncGenerator[Any, None]:
            started = time.perf_counter()
            headers = call.request_headers(ctx)
            state = self._start(method, headers)
            first = True
            task = self._drain.enter()
            held = False
            try:
                _check_decoded(request)  # before any auth or storage work
                held = self._enter(method)
                await self._admit(state, headers)
                # aclosing: a client that goes away closes the servicer's stream at once
                # (and with it the upstream call), not whenever it is garbage-collected.
                async with contextlib.aclosing(behavior(request, ctx)) as messages:
                    async for message in messages:
                        self._check_size(message)
                        if first:
                            # Headers go out with the first message, so an error raised
                            # before it is still a trailers-only status (a real HTTP error).
                            await ctx.send_initial_metadata(tuple(state.response_headers.items()))
                            first = False
                        self._drain.sending(task, True)
                        yield message
                        self._drain.sending(task, False)
                        if self._drain.was_shut(task):  # marked while grpc was sending
                            raise asyncio.CancelledError
            except asyncio.CancelledError:
                if not self._drain.was_shut(task):
                    raise  # the client went away
                # The shutdown grace period is over: end in-band, not silently.
                final = self._shutdown_messages.get(method)
                if first or final is None:
                    await self._fail(ctx, state, Unavailable(_SHUTTING_DOWN, retry_after=1))
                else:
                    yield final()
            except Exception as exc:
                await self._fail(ctx, state, exc)
            finally:
                if held:
                    self._release()
                self._drain.leave(task)
                _log(state, ctx, started)

        return wrapped


def _log(state: call.CallState, ctx: grpc.aio.ServicerContext[Any, Any], started: float) -> None:
    """The call's metrics and its one access-log line (JSON fields: method, status,
    latency_ms, tenant, subject, request_id)."""
    seconds = time.perf_counter() - started
    code = ctx.code()
    name = code.name if isinstance(code, grpc.StatusCode) else "OK"
    if ctx.cancelled():
        name = "CANCELLED"
    metrics.rpc_finished(state.method, name, seconds)
    if not access_log.isEnabledFor(logging.INFO):
        return
    latency = round(seconds * 1000, 2)
    access_log.info(
        "%s %s %sms",
        state.method,
        name,
        latency,
        extra={
            "method": state.method,
            "status": name,
            "latency_ms": latency,
            "tenant": state.principal.tenant_id if state.principal else None,
            "subject": state.principal.subject if state.principal else None,
            "request_id": state.request_id,
        },
    )
