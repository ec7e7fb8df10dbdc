"""Chat completions: validation, model resolution, the provider call and its metering.

One implementation serves the unary call, the typed gRPC stream and the SSE stream: the
API layer only encodes the events this module yields.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable

from chatplane.chat.metering import Meter
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
from chatplane.llm.types import CompletionParams, Finish, Provider, UsageUpdate
from chatplane.projects.repository import ProjectRepository
from chatplane.projects.types import tier_models
from chatplane.ratelimit import RateLimiter, admit
from chatplane.storage.db import Database
from chatplane.usage.types import UsageRow


class ChatService:
    """Runs completions and records every call's usage."""

    def __init__(
        self,
        db: Database,
        *,
        box: SecretBox,
        prices: PriceTable,
        usage: Callable[[UsageRow], None],
        providers: ProviderRegistry,
        server_anthropic_key: str | None,
        session_limiter: RateLimiter | None = None,
        config_ttl: float = 5.0,
    ) -> None:
        self._db = db
        self._box = box
        self._prices = prices
        self._record = usage
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
        config = await self._config(tenant_id, request.project_id)
        resolution = resolve_model(config, model_id=request.model_id, tier=request.tier)
        provider = self._providers.get(resolution.provider, resolution.credential)
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
        try:
            result = await provider.complete(params)
        except BaseException as exc:
            meter.record("error" if isinstance(exc, Exception) else "cancelled")
            raise
        cost = meter.finished(result.finish_reason, result.usage)
        meter.record("ok")
        return ChatResult(
            content=result.content,
            tool_calls=result.tool_calls,
            model=resolution.model,
            finish_reason=result.finish_reason,
            usage=result.usage,
            estimated_cost=cost,
            latency_ms=meter.elapsed_ms(),
        )

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
        finish: Finish | None = None
        started_streaming = False
        status = "ok"
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
                        yield event
            if finish is None:  # provider contract: Finish ends every successful stream
                raise Unavailable("The model stream ended before it finished")
            cost = meter.finished(finish.finish_reason, finish.usage)
            yield UsageUpdate(finish.usage)
            yield StreamCompleted(finish.usage, cost, meter.elapsed_ms())
        except ChatplaneError as exc:
            status = "error"
            if not started_streaming:
                raise
            yield StreamFailed(exc.message)
        except Exception:
            status = "error"
            if not started_streaming:
                raise
            yield StreamFailed("Internal error")
        except BaseException:  # cancelled: the client went away
            status = "cancelled"
            raise
        finally:
            meter.record(status)
