"""The grpc.aio server: servicers, the interceptor, health, reflection; start and drain."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from chatplane.agent.v1 import (
    agent_service_pb2,
    agent_service_pb2_grpc,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
)
from chatplane.agents.deployments import DeploymentService
from chatplane.agents.service import AgentService
from chatplane.analytics.service import AnalyticsService
from chatplane.analytics.v1 import analytics_service_pb2, analytics_service_pb2_grpc
from chatplane.api import openapi, reflection
from chatplane.api.chat_wire import SHUTDOWN_MESSAGES
from chatplane.api.drain import Drain
from chatplane.api.interceptor import ApiInterceptor
from chatplane.api.overload import overload_limiter
from chatplane.api.servicers import (
    agents,
    analytics,
    chat,
    chats,
    keys,
    openai,
    ops,
    projects,
    sessions,
    testing,
)
from chatplane.chat.service import ChatService
from chatplane.chat.v1 import chat_service_pb2, chat_service_pb2_grpc
from chatplane.chatapi.v1 import chat_api_service_pb2, chat_api_service_pb2_grpc
from chatplane.config import default_max_inflight
from chatplane.iam.auth import Authenticator
from chatplane.iam.service import IamService
from chatplane.iam.v1 import api_key_service_pb2, api_key_service_pb2_grpc
from chatplane.observability import tracing
from chatplane.openai.v1 import openai_service_pb2, openai_service_pb2_grpc
from chatplane.ops.v1 import ops_service_pb2, ops_service_pb2_grpc
from chatplane.project.v1 import project_service_pb2, project_service_pb2_grpc
from chatplane.projects.service import ProjectService
from chatplane.ratelimit import RateLimiter
from chatplane.session.v1 import session_service_pb2, session_service_pb2_grpc
from chatplane.sessions.chats import ChatApi
from chatplane.sessions.service import SessionService
from chatplane.sessions.turn import TurnService
from chatplane.testing.service import BotFunctionService, TestSuiteService
from chatplane.testing.uploads import UploadService
from chatplane.testing.v1 import testing_service_pb2, testing_service_pb2_grpc
from chatplane.usage.service import UsageService

log = logging.getLogger("chatplane.server")

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # matches the gateway's body limit
STREAM_END_SECONDS = 1.0  # after the grace period: time for streams to send their last event
# Request metadata grpc accepts. Envoy refuses REST headers over 32 KiB first (431); what it
# forwards (the client's headers plus its own, the path twice) stays below this, so grpc's
# own limit (RESOURCE_EXHAUSTED, HTTP 429, and at random between its soft and hard limits)
# never answers a REST call. Soft and hard limits are equal: no randomness.
MAX_METADATA_BYTES = 96 * 1024


@dataclass(frozen=True, slots=True)
class Services:
    """What the servicers and the interceptor call."""

    authenticator: Authenticator
    limiter: RateLimiter
    iam: IamService
    projects: ProjectService
    chats: ChatService
    usage: UsageService
    agents: AgentService
    deployments: DeploymentService
    turns: TurnService
    sessions: SessionService
    chat_api: ChatApi
    analytics: AnalyticsService | None = None
    # The XO upload, bot function import and conversation test suites (issue 13).
    uploads: UploadService | None = None
    bot_functions: BotFunctionService | None = None
    test_suites: TestSuiteService | None = None
    # Readiness (GET /readyz): raises when the database does not answer.
    ping_database: Callable[[], Awaitable[None]] | None = None
    # GET /metrics from non-loopback clients: `Authorization: Bearer <token>`.
    metrics_token: str | None = None


def _name(module: Any, service: str) -> str:
    """A service's full name from its generated module."""
    return str(module.DESCRIPTOR.services_by_name[service].full_name)


async def _no_database() -> None:
    return None


class GrpcServer:
    def __init__(self, services: Services, *, host: str, port: int, max_inflight: int = 0) -> None:
        self._app = services
        self._host = host
        self._requested_port = port
        self.port = 0
        self.health = health.aio.HealthServicer()
        self.drain = Drain()
        self.inflight = overload_limiter(max_inflight or default_max_inflight())
        self._server: grpc.aio.Server | None = None
        self._service_names: list[str] = []
        self.draining = False  # set when stop() begins: readiness fails from then on

    async def start(self) -> None:
        app = self._app
        scope_table = {
            **projects.SCOPES,
            **keys.SCOPES,
            **chat.SCOPES,
            **agents.SCOPES,
            **sessions.SCOPES,
            **chats.SCOPES,
            **analytics.SCOPES,
            **testing.SCOPES,
            **openai.SCOPES,
            **ops.SCOPES,
        }
        # Attachment uploads are the only larger requests (the gateway raises its limit
        # for that route alone); grpc's receive limit is per server.
        receive_limit = max(MAX_MESSAGE_BYTES, app.sessions.max_attachment_bytes + 1024 * 1024)
        server = grpc.aio.server(
            interceptors=[
                *_tracing_interceptors(),  # none unless OTEL_* turned tracing on
                ApiInterceptor(
                    authenticator=app.authenticator,
                    limiter=app.limiter,
                    scopes=scope_table,
                    max_reply_bytes=MAX_MESSAGE_BYTES,
                    drain=self.drain,
                    shutdown_messages={**SHUTDOWN_MESSAGES, **openai.SHUTDOWN_MESSAGES},
                    inflight=self.inflight,
                    public_methods=chats.PUBLIC_METHODS,
                    open_methods=ops.OPEN_METHODS,
                ),
            ],
            options=[
                ("grpc.max_receive_message_length", receive_limit),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_metadata_size", MAX_METADATA_BYTES),
                ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        # (add to server, servicer, service name): one row per service served.
        services: list[tuple[Callable[[Any, grpc.aio.Server], None], Any, str]] = [
            (
                project_service_pb2_grpc.add_ProjectServiceServicer_to_server,
                projects.ProjectServicer(app.projects),
                _name(project_service_pb2, "ProjectService"),
            ),
            (
                api_key_service_pb2_grpc.add_ApiKeyServiceServicer_to_server,
                keys.ApiKeyServicer(app.iam, app.authenticator),
                _name(api_key_service_pb2, "ApiKeyService"),
            ),
            (
                chat_service_pb2_grpc.add_ChatServiceServicer_to_server,
                chat.ChatServicer(app.chats, app.usage, app.projects, app.turns),
                _name(chat_service_pb2, "ChatService"),
            ),
            (
                agent_service_pb2_grpc.add_AgentServiceServicer_to_server,
                agents.AgentServicer(app.agents),
                _name(agent_service_pb2, "AgentService"),
            ),
            (
                deployment_service_pb2_grpc.add_DeploymentServiceServicer_to_server,
                agents.DeploymentServicer(app.deployments),
                _name(deployment_service_pb2, "DeploymentService"),
            ),
            (
                session_service_pb2_grpc.add_SessionServiceServicer_to_server,
                sessions.SessionServicer(app.sessions),
                _name(session_service_pb2, "SessionService"),
            ),
            (
                chat_api_service_pb2_grpc.add_ChatApiServiceServicer_to_server,
                chats.ChatApiServicer(app.chat_api),
                _name(chat_api_service_pb2, "ChatApiService"),
            ),
            (
                openai_service_pb2_grpc.add_OpenAiServiceServicer_to_server,
                openai.OpenAiServicer(app.chats),
                _name(openai_service_pb2, "OpenAiService"),
            ),
            (
                ops_service_pb2_grpc.add_OpsServiceServicer_to_server,
                ops.OpsServicer(
                    ping_database=app.ping_database or _no_database,
                    draining=lambda: self.draining,
                    openapi=openapi.document_bytes,
                    metrics_token=app.metrics_token,
                ),
                _name(ops_service_pb2, "OpsService"),
            ),
        ]
        if app.analytics is not None:
            services.append(
                (
                    analytics_service_pb2_grpc.add_AnalyticsServiceServicer_to_server,
                    analytics.AnalyticsServicer(app.analytics),
                    _name(analytics_service_pb2, "AnalyticsService"),
                )
            )
        if app.uploads is not None and app.bot_functions is not None:
            services.append(
                (
                    testing_service_pb2_grpc.add_BotFunctionServiceServicer_to_server,
                    testing.BotFunctionServicer(app.uploads, app.bot_functions),
                    _name(testing_service_pb2, "BotFunctionService"),
                )
            )
        if app.test_suites is not None:
            services.append(
                (
                    testing_service_pb2_grpc.add_TestSuiteServiceServicer_to_server,
                    testing.TestSuiteServicer(app.test_suites),
                    _name(testing_service_pb2, "TestSuiteService"),
                )
            )
        for add, servicer, _ in services:
            add(servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        self._service_names = [name for _, _, name in services]
        missing = _unlisted_methods(self._service_names, scope_table)
        if missing:
            raise RuntimeError(f"methods without an access policy: {missing}")
        reflection.enable(
            [*self._service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name],
            server,
        )
        address = f"{self._host}:{self._requested_port}"
        try:
            self.port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise RuntimeError(f"cannot listen for gRPC on {address}: {exc}") from exc
        await server.start()
        self._server = server
        # SERVING only now that storage is migrated and bootstrapped.
        for name in ["", *self._service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC listening on %s:%d", self._host, self.port)

    @property
    def service_names(self) -> list[str]:
        """Full names of the chatplane services this server registered."""
        return list(self._service_names)

    async def stop(self, grace: float) -> None:
        """Stop accepting; in-flight calls finish within `grace` seconds. Streams still
        running then end with an in-band "server shutting down" (api/drain.py), given
        STREAM_END_SECONDS more to send it; anything left after that is cut."""
        self.draining = True
        await self.health.enter_graceful_shutdown()
        if self._server is not None:
            stopping = asyncio.create_task(self._server.stop(grace + STREAM_END_SECONDS))
            await asyncio.sleep(0)  # the server stops accepting first
            await self.drain.run(grace)
            await stopping
            self._server = None

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


def _unlisted_methods(service_names: Sequence[str], scope_table: dict[str, str]) -> list[str]:
    from google.protobuf import descriptor_pool  # noqa: PLC0415

    pool = descriptor_pool.Default()
    missing = []
    for name in service_names:
        for method in pool.FindServiceByName(name).methods:
            full = f"/{name}/{method.name}"
            if full not in scope_table:
                missing.append(full)
    return missing


def _tracing_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """With tracing on, the OpenTelemetry grpc.aio server interceptor, outermost: a SERVER
    span per RPC (health checks and reflection left out), the child of the caller's W3C
    `traceparent` (REST callers' headers reach us through Envoy as metadata), current
    while our interceptor and the servicer run."""
    provider = tracing.provider()
    if provider is None:
        return []
    from opentelemetry.instrumentation.grpc import (  # noqa: PLC0415
        aio_server_interceptor,
        filters,
    )

    untraced = filters.any_of(filters.health_check(), filters.service_prefix("grpc.reflection"))
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=provider, filter_=filters.negate(untraced)
    )
    return [interceptor]
