"""The composition root: builds storage, services and engines from Settings, and the gRPC
server around them. The server process and the CLI both start here; the CLI uses the
services without the server."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from sqlalchemy import text

from chatplane.agents.deployments import DeploymentService
from chatplane.agents.service import AgentService
from chatplane.analytics.jobs import JobRunner
from chatplane.analytics.service import AnalyticsService
from chatplane.api.server import GrpcServer, Services
from chatplane.chat.service import ChatService
from chatplane.config import Settings
from chatplane.iam.auth import Authenticator
from chatplane.iam.security import SecretBox
from chatplane.iam.service import IamService
from chatplane.iam.types import Bootstrap
from chatplane.llm.local import LocalProvider
from chatplane.llm.pricing import PriceTable
from chatplane.llm.registry import ProviderRegistry
from chatplane.observability import tracing
from chatplane.projects.service import ProjectService
from chatplane.ratelimit import RateLimiter, Window, build_rate_limiter
from chatplane.sessions.attachments import FileStore
from chatplane.sessions.chats import ChatApi
from chatplane.sessions.http_tools import HttpTools
from chatplane.sessions.idle import IdleSweeper
from chatplane.sessions.queue import turn_queue
from chatplane.sessions.service import SessionService
from chatplane.sessions.turn import TurnService
from chatplane.storage.db import Database
from chatplane.testing.service import BotFunctionService, TestSuiteService
from chatplane.testing.uploads import UploadService
from chatplane.usage.service import UsageService, UsageWriter

log = logging.getLogger("chatplane.server")


class App:
    """The whole server. `start()` migrates and serves; `stop()` drains and closes.

    `open()` / `close()` alone give the services without serving (the CLI)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.box = SecretBox.from_passphrase_or_file(
            settings.secret_key, settings.data_dir / "secret.key"
        )
        # Settings changes evict the chat path's cached project/tenant settings.
        self.iam = IamService(self.db, self.box, on_tenant_change=self._forget_tenant)
        self.projects = ProjectService(self.db, on_change=self._forget_tenant)
        # Sessions plug in their count: `self.deployments.active_sessions = ...`.
        self.deployments = DeploymentService(self.db)
        self.agents = AgentService(self.db, deployments=self.deployments)  # one cache
        self.authenticator = Authenticator(
            self.db, self.box, jwt_max_lifetime=settings.jwt_max_lifetime_seconds
        )
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
        self.usage_writer = UsageWriter(self.db)
        self.usage = UsageService(self.db, self.usage_writer)
        self.providers = ProviderRegistry(
            local=LocalProvider(token_delay=settings.local_token_delay),
            anthropic_base_url=settings.anthropic_base_url,
            transport=settings.anthropic_transport,
        )
        self.chats = ChatService(
            self.db,
            box=self.box,
            prices=PriceTable.load(settings.prices_file),
            usage=self.usage_writer,
            providers=self.providers,
            server_anthropic_key=settings.anthropic_api_key,
            session_limiter=self.session_limiter,
        )
        self.http_tools = HttpTools(allowed_hosts=settings.tool_allowed_hosts)
        self.turns = TurnService(
            self.db,
            agents=self.agents,
            chats=self.chats,
            limiter=self.limiter,
            session_limiter=self.session_limiter,
            tools=self.http_tools,
            queue=turn_queue(running=settings.max_concurrent_turns, waiting=settings.turn_queue),
            max_active_sessions=settings.max_active_sessions,
            payload_max_bytes=settings.llm_payload_max_bytes if settings.llm_payloads else None,
        )
        self.deployments.active_sessions = self.turns.active_on
        self.sessions = SessionService(
            self.db,
            agents=self.agents,
            projects=self.projects,
            turns=self.turns,
            files=FileStore(settings.data_dir / "attachments"),
            max_attachment_bytes=settings.attachment_max_bytes,
        )
        self.chat_api = ChatApi(self.db, self.sessions)
        # Durable analytics jobs (billing summary, containment report) and the vendor's
        # per-bot limits on the XO routes.
        self.jobs = JobRunner(self.db, concurrency=settings.job_concurrency)
        self.vendor_limiter: RateLimiter = build_rate_limiter(
            [
                Window(60, settings.xo_rate_limit_per_minute),
                Window(3600, settings.xo_rate_limit_per_hour),
            ],
            settings.redis_url,
        )
        self.analytics = AnalyticsService(
            self.db,
            projects=self.projects,
            runner=self.jobs,
            idle_minutes=settings.session_idle_minutes,
            vendor_limiter=self.vendor_limiter,
        )
        # XO uploads, bot function import, conversation test suites (durable jobs too).
        self.uploads = UploadService(
            self.db, FileStore(settings.data_dir / "uploads"), max_bytes=settings.upload_max_bytes
        )
        self.bot_functions = BotFunctionService(
            self.db,
            uploads=self.uploads,
            projects=self.projects,
            agents=self.agents,
            limiter=self.vendor_limiter,
        )
        self.test_suites = TestSuiteService(
            self.db,
            uploads=self.uploads,
            projects=self.projects,
            agents=self.agents,
            turns=self.turns,
            runner=self.jobs,
            limiter=self.vendor_limiter,
        )
        self.idle_sessions = IdleSweeper(self.db, idle_minutes=settings.session_idle_minutes)
        self.server = GrpcServer(
            Services(
                self.authenticator,
                self.limiter,
                self.iam,
                self.projects,
                self.chats,
                self.usage,
                agents=self.agents,
                deployments=self.deployments,
                turns=self.turns,
                sessions=self.sessions,
                chat_api=self.chat_api,
                analytics=self.analytics,
                uploads=self.uploads,
                bot_functions=self.bot_functions,
                test_suites=self.test_suites,
                ping_database=self.ping_database,
                metrics_token=settings.metrics_token,
            ),
            host=settings.host,
            port=settings.grpc_port,
            max_inflight=settings.max_inflight,
        )
        self.bootstrap: Bootstrap | None = None
        # Called by open() right after a first start created the tenant and admin key.
        self.on_bootstrap: Callable[[Bootstrap], None] | None = None

    @property
    def grpc_port(self) -> int:
        return self.server.port

    async def ping_database(self) -> None:
        """Raises unless the database answers `SELECT 1` (readiness, GET /readyz)."""
        async with self.db.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    def _forget_tenant(self, tenant_id: str) -> None:
        self.chats.forget_tenant(tenant_id)

    async def open(self) -> None:
        """Storage ready: data directory, migrations, the first tenant and admin key."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.db.migrate()
        self.bootstrap = await self.iam.bootstrap(self.settings.bootstrap_api_key)
        if self.bootstrap is not None and self.on_bootstrap is not None:
            # At once: whatever fails later in start-up, the new admin key is not lost.
            self.on_bootstrap(self.bootstrap)

    async def start(self) -> None:
        # Per process (each worker starts its own App): only when OTEL_* ask for it, and
        # before the server, whose interceptors depend on it.
        tracing.setup()
        await self.open()
        self.idle_sessions.start()
        self.jobs.start()
        await self.server.start()

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let in-flight calls finish within the grace period, close all."""
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        await self.server.stop(grace)
        await self.close()

    async def close(self) -> None:
        await self.jobs.aclose()
        await self.vendor_limiter.aclose()
        await self.idle_sessions.aclose()
        await self.providers.aclose()
        await self.http_tools.aclose()
        await self.usage_writer.aclose()  # every recorded call is stored before we exit
        await self.limiter.aclose()
        await self.session_limiter.aclose()
        await self.db.dispose()
        if tracing.enabled():  # the last spans out (the exporter blocks: off the loop)
            await asyncio.to_thread(tracing.shutdown)

    async def wait(self) -> None:
        await self.server.wait()


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
