"""The grpc.aio server: servicers, the interceptor, health, reflection; start and drain."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from chatplane.api.interceptor import ApiInterceptor
from chatplane.api.servicers import chat, keys, projects
from chatplane.chat.service import ChatService
from chatplane.chat.v1 import chat_service_pb2, chat_service_pb2_grpc
from chatplane.iam.auth import Authenticator
from chatplane.iam.service import IamService
from chatplane.iam.v1 import api_key_service_pb2, api_key_service_pb2_grpc
from chatplane.project.v1 import project_service_pb2, project_service_pb2_grpc
from chatplane.projects.service import ProjectService
from chatplane.ratelimit import RateLimiter
from chatplane.usage.service import UsageService

log = logging.getLogger("chatplane.server")

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # matches the gateway's body limit


@dataclass(frozen=True, slots=True)
class Services:
    """What the servicers and the interceptor call."""

    authenticator: Authenticator
    limiter: RateLimiter
    iam: IamService
    projects: ProjectService
    chats: ChatService
    usage: UsageService


class GrpcServer:
    def __init__(self, services: Services, *, host: str, port: int) -> None:
        self._app = services
        self._host = host
        self._requested_port = port
        self.port = 0
        self.health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self._service_names: list[str] = []

    async def start(self) -> None:
        app = self._app
        scope_table = {**projects.SCOPES, **keys.SCOPES, **chat.SCOPES}
        server = grpc.aio.server(
            interceptors=[
                ApiInterceptor(
                    authenticator=app.authenticator, limiter=app.limiter, scopes=scope_table
                )
            ],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        project_service_pb2_grpc.add_ProjectServiceServicer_to_server(
            projects.ProjectServicer(app.projects), server
        )
        api_key_service_pb2_grpc.add_ApiKeyServiceServicer_to_server(
            keys.ApiKeyServicer(app.iam, app.authenticator), server
        )
        chat_service_pb2_grpc.add_ChatServiceServicer_to_server(
            chat.ChatServicer(app.chats, app.usage, app.projects), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        self._service_names = [
            project_service_pb2.DESCRIPTOR.services_by_name["ProjectService"].full_name,
            api_key_service_pb2.DESCRIPTOR.services_by_name["ApiKeyService"].full_name,
            chat_service_pb2.DESCRIPTOR.services_by_name["ChatService"].full_name,
        ]
        missing = _unlisted_methods(self._service_names, scope_table)
        if missing:
            raise RuntimeError(f"methods without an access policy: {missing}")
        reflection.enable_server_reflection(
            [
                *self._service_names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
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

    async def stop(self, grace: float) -> None:
        """Stop accepting; in-flight calls finish within `grace` seconds."""
        await self.health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace)
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
