"""Server lifecycle: storage, services, the grpc.aio server, health, reflection, shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from chatplane.api.interceptor import ApiInterceptor
from chatplane.api.servicers import chat, keys, projects
from chatplane.chat.v1 import chat_service_pb2, chat_service_pb2_grpc
from chatplane.config import Settings
from chatplane.iam.v1 import api_key_service_pb2, api_key_service_pb2_grpc
from chatplane.llm.anthropic_provider import AnthropicProvider
from chatplane.llm.local_provider import LocalProvider
from chatplane.llm.pricing import PriceTable
from chatplane.llm.types import Provider
from chatplane.project.v1 import project_service_pb2, project_service_pb2_grpc
from chatplane.ratelimit import RateLimiter, Window, build_rate_limiter
from chatplane.services.auth import Authenticator
from chatplane.services.chat import ChatService
from chatplane.services.iam import Bootstrap, IamService
from chatplane.services.projects import ProjectService
from chatplane.services.security import SecretBox
from chatplane.services.usage import UsageService, UsageWriter
from chatplane.storage.db import create_engine, migrate, session_factory

log = logging.getLogger("chatplane.server")

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # matches the gateway's body limit


class App:
    """The whole server. `start()` migrates and serves; `stop()` drains and closes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings.database_url)
        self.sessions = session_factory(self.engine)
        self.box = SecretBox.from_passphrase_or_file(
            settings.secret_key, settings.data_dir / "secret.key"
        )
        # Settings changes evict the chat path's cached project/tenant settings.
        self.iam = IamService(self.sessions, self.box, on_tenant_change=self._forget_tenant)
        self.projects = ProjectService(self.sessions, on_change=self._forget_tenant)
        self.authenticator = Authenticator(self.sessions, self.box)
        self.limiter: RateLimiter = build_rate_limiter(
            [
                Window(60, settings.rate_limit_per_minute),
                Window(3600, settings.rate_limit_per_hour),
            ],
            settings.redis_url,
        )
        self.session_limiter: RateLimiter = build_rate_limiter(
            [Window(60, settings.session_rate_limit_per_minute)], settings.redis_url
        )
        self.usage_writer = UsageWriter(self.sessions)
        self.usage = UsageService(self.sessions, self.usage_writer)
        self.local_provider = LocalProvider(token_delay=settings.local_token_delay)
        self._anthropic: dict[str, AnthropicProvider] = {}
        self.chats = ChatService(
            self.sessions,
            box=self.box,
            prices=PriceTable.load(settings.prices_file),
            usage=self.usage_writer.record,
            local=self.local_provider,
            anthropic_for=self._anthropic_provider,
            server_anthropic_key=settings.anthropic_api_key,
            session_limiter=self.session_limiter,
        )
        self.health = health.aio.HealthServicer()
        self.bootstrap: Bootstrap | None = None
        self.grpc_port = 0
        self._server: grpc.aio.Server | None = None
        self._service_names: list[str] = []

    def _forget_tenant(self, tenant_id: str) -> None:
        self.chats.forget_tenant(tenant_id)

    def _anthropic_provider(self, api_key: str) -> Provider:
        """One SDK client (and connection pool) per credential."""
        provider = self._anthropic.get(api_key)
        if provider is None:
            provider = AnthropicProvider(api_key, base_url=self.settings.anthropic_base_url)
            self._anthropic[api_key] = provider
        return provider

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await migrate(self.engine)
        self.bootstrap = await self.iam.bootstrap(self.settings.bootstrap_api_key)

        self.usage_writer.start()
        scope_table = {**projects.SCOPES, **keys.SCOPES, **chat.SCOPES}
        server = grpc.aio.server(
            interceptors=[
                ApiInterceptor(
                    authenticator=self.authenticator, limiter=self.limiter, scopes=scope_table
                )
            ],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        project_service_pb2_grpc.add_ProjectServiceServicer_to_server(
            projects.ProjectServicer(self.projects), server
        )
        api_key_service_pb2_grpc.add_ApiKeyServiceServicer_to_server(
            keys.ApiKeyServicer(self.iam, self.authenticator), server
        )
        chat_service_pb2_grpc.add_ChatServiceServicer_to_server(
            chat.ChatServicer(self.chats, self.usage, self.projects), server
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
        address = f"{self.settings.host}:{self.settings.grpc_port}"
        try:
            self.grpc_port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise RuntimeError(f"cannot listen for gRPC on {address}: {exc}") from exc
        await server.start()
        self._server = server
        # SERVING only now that storage is migrated and bootstrapped.
        for name in ["", *self._service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("gRPC listening on %s:%d", self.settings.host, self.grpc_port)

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let in-flight calls finish within the grace period, close storage."""
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        await self.health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        providers: list[Provider] = [self.local_provider, *self._anthropic.values()]
        for provider in providers:
            await provider.aclose()
        await self.usage_writer.aclose()  # every recorded call is stored before we exit
        await self.limiter.aclose()
        await self.session_limiter.aclose()
        await self.engine.dispose()

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


async def serve_until_signal(app: App, *, on_started: list[asyncio.Event] | None = None) -> None:
    """Run until SIGTERM/SIGINT, then stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    for event in on_started or []:
        event.set()
    await stop.wait()
    log.info("shutting down (grace %.1fs)", app.settings.shutdown_grace_seconds)
    await app.stop()
