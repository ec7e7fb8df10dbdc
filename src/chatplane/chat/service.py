"""Chat completions: validation, model resolution, the provider call and its metering.

One implementation serves the unary call, the typed gRPC stream and the SSE stream: the
API layer only encodes the events this module yields.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Protocol

from chatplane.chat.metering import Meter, delivered_usage
from chatplane.chat.resolution import Resolution, resolve_model
from chatplane.chat.types import (
    ChatEvent,
    ChatRequest,
    ChatResult,
    RuntimeConfig,
    StreamCompleted,
    StreamFailed,
    StreamMetadata,
)
from chatplane.chat.validation import DEFAULT_MAX_TOKENS, validate
from chatplane.errors import ChatplaneError, NotFound, Unavailable
from chatplane.iam.security import SecretBox
from chatplane.kit.cache import TtlCache
from chatplane.llm.pricing import PriceTable
from chatplane.llm.registry import ProviderRegistry
from chatplane.llm.types import CompletionParams, Finish, Provider, ProviderEvent, UsageUpdate
from chatplane.observability import metrics, tracing
from chatplane.projects.repository import ProjectRepository
from chatplane.projects.types import tier_models
from chatplane.ratelimit import RateLimiter, admit
from chatplane.storage.db import Database
from chatplane.usage.types import UsageRow


class UsageSink(Protocol):
    """Where usage rows go (the usage writer): `write` returns once a row is durable."""

    def record(self, row: UsageRow) -> None: ...

    async def write(self, row: UsageRow) -> None: ...


class ChatService:
    """Runs completions and records every call's usage."""

    def __init__(
        self,
        db: Database,
        *,
        box: SecretBox,
        prices: PriceTable,
        usage: UsageSink,
        providers: ProviderRegistry,
        server_anthropic_key: str | None,
        session_limiter: RateLimiter | None = None,
        config_ttl: float = 5.0,
    ) -> None:
        self._db = db
        self._box = box
        self._prices = prices
        self._usage = usage
        self._providers = providers
        self._server_key = server_anthropic_key
        self._session_limiter = session_limiter
        # Other replicas see project/tenant changes within this TTL; this one at once.
        self._configs: TtlCache[tuple[str, str], RuntimeConfig] = TtlCache(config_ttl)

    async def _config(self, tenant_id: str, project_id: str) -> RuntimeConfig:
        """The settings model resolution needs, cached briefly: one joined query per miss."""
        key = (tenant_id, project_id)
        config = self._configs.get(key)
        if config is not None:
            return config
        async with self._db.read() as uow:
            row = await ProjectRepository(uow, tenant_id).get_with_tenant(project_id)
        if row is None:
            raise NotFound("Project not found", reason="PROJECT_NOT_FOUND")
        project, tenant = row
        config = RuntimeConfig(
            tier_models=tier_models(project),
            project_model=project.default_model,
            tenant_model=tenant.default_model,
            anthropic_key=(
                self._box.decrypt(tenant.anthropic_key_encrypted)
                if tenant.anthropic_key_encrypted
                else self._server_key
            ),
        )
        self._configs.put(key, config)
        return config

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop cached settings after a change to the tenant or one of its projects."""
        self._configs.discard_where(lambda key, _: key[0] == tenant_id)

    async def resolve(
        self, tenant_id: str, project_id: str, *, model_id: str = "", tier: str = ""
    ) -> tuple[Resolution, Provider]:
        """The model and provider that answer for a project (the agent runtime uses it too)."""
        config = await self._config(tenant_id, project_id)
        resolution = resolve_model(config, model_id=model_id, tier=tier)
        return resolution, self._providers.get(resolution.provider, resolution.credential)

    @property
    def prices(self) -> PriceTable:
        return self._prices

    async def prepare(
        self, tenant_id: str, request: ChatRequest
    ) -> tuple[Resolution, Provider, CompletionParams]:
        validate(request)
        if request.session_id and self._session_limiter is not None:
            # The per-session limit (`sessionId` is "for rate limiting").
            await admit(
                self._session_limiter,
                f"session:{tenant_id}:{request.session_id}",
                message="Session message rate limit exceeded",
                reason="SESSION_RATE_LIMIT_EXCEEDED",
            )
        resolution, provider = await self.resolve(
            tenant_id, request.project_id, model_id=request.model_id, tier=request.tier
        )
        params = CompletionParams(
            model=resolution.model,
            messages=request.messages,
            tools=request.tools,
            temperature=request.temperature,
            max_tokens=request.max_tokens or DEFAULT_MAX_TOKENS,
        )
        return resolution, provider, params

    def _meter(
        self, tenant_id: str, request: ChatRequest, model: str, provider: str, started: float
    ) -> Meter:
        return Meter(
            self._record,
            self._prices,
            started=started,
            tenant_id=tenant_id,
            project_id=request.project_id,
            session_id=request.session_id,
            model=model,
            provider=provider,
        )

    async def complete(self, tenant_id: str, request: ChatRequest) -> ChatResult:
        started = time.perf_counter()
        resolution, provider, params = await self.prepare(tenant_id, request)
        meter = self._meter(tenant_id, request, resolution.model, provider.name, started)
        span = tracing.start_llm_span(provider.name, resolution.model)
        try:
            with tracing.use(span):  # the SDK's own spans (when on) nest under it
                result = await provider.complete(params)
        except BaseException as exc:
            status = "error" if isinstance(exc, Exception) else "cancelled"
            meter.record(status)
            tracing.end_llm_span(span, error=exc, status=status)
            raise
        cost = meter.finished(result.finish_reason, result.usage)
        tracing.end_llm_span(
            span,
            finish_reason=result.finish_reason,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            cost=cost,
            status="ok",
        )
        await self._store(meter, "ok")  # acknowledged only once its usage is durable
        return ChatResult(
            content=result.content,
            tool_calls=result.tool_calls,
            model=resolution.model,
            finish_reason=result.finish_reason,
            usage=result.usage,
            estimated_cost=cost,
            latency_ms=meter.elapsed_ms(),
        )

    def observe_usage(self, row: UsageRow) -> None:
        """The call in the metrics (models outside the price table count as `other`)."""
        metrics.observe_usage_row(row, known_model=self._prices.get(str(row["model"])) is not None)

    def _record(self, row: UsageRow) -> None:
        self.observe_usage(row)
        self._usage.record(row)

    async def _store(self, meter: Meter, status: str) -> None:
        """Write the call's usage row and wait until it is durable (once per call)."""
        row = meter.take(status)
        if row is not None:
            self.observe_usage(row)
            await self._usage.write(row)

    async def stream(self, tenant_id: str, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """Events as the model emits them.

        Errors before the model's first event raise (the caller gets a real status);
        after it they become one StreamFailed event and the stream ends. Token usage
        goes out once, as `usage` right before `complete`; it is recorded in every case,
        including a client that goes away (status `cancelled`).
        """
        started = time.perf_counter()
        resolution, provider, params = await self.prepare(tenant_id, request)
        meter = self._meter(tenant_id, request, resolution.model, provider.name, started)
        # Never current: a context attached in an async generator may detach elsewhere.
        span = tracing.start_llm_span(provider.name, resolution.model)
        failure: BaseException | None = None
        finish: Finish | None = None
        started_streaming = False
        status = "ok"
        delivered: list[ProviderEvent] = []  # what reached the caller, for a cut stream
        try:
            async with contextlib.aclosing(provider.stream(params)) as events:
                async for event in events:
                    if not started_streaming:
                        # The upstream accepted the call: from here on errors are in-band.
                        started_streaming = True
                        yield StreamMetadata(resolution.model, provider.name, resolution.source)
                    if isinstance(event, Finish):
                        finish = event
                    elif isinstance(event, UsageUpdate):
                        meter.progress(event.usage)  # sent once, at the end
                    else:
                        meter.first_output()
                        delivered.append(event)
                        yield event
            if finish is None:  # provider contract: Finish ends every successful stream
                raise Unavailable("The model stream ended before it finished")
            cost = meter.finished(finish.finish_reason, finish.usage)
            yield UsageUpdate(finish.usage)
            await self._store(meter, "ok")  # `complete` leaves once the usage is durable
            yield StreamCompleted(finish.usage, cost, meter.elapsed_ms(), finish.finish_reason)
        except ChatplaneError as exc:
            status, failure = "error", exc
            if not started_streaming:
                raise
            await self._store(meter, status)
            yield StreamFailed(exc.message)
        except Exception as exc:
            status, failure = "error", exc
            if not started_streaming:
                raise
            await self._store(meter, status)
            yield StreamFailed("Internal error")
        except BaseException as exc:  # cancelled: the client went away, or shutdown cut it
            status, failure = "cancelled", exc
            meter.progress(delivered_usage(meter.usage, params, delivered))
            raise
        finally:
            meter.record(status)
            meter.end_span(
                span,
                finish_reason=finish.finish_reason if finish is not None else None,
                error=failure,
                status=status,
            )
