"""Chat completions: validation, model resolution, the provider call, usage and cost.

One implementation serves the unary call, the typed gRPC stream and the SSE stream: the
servicer only renders the events this module yields.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from chatplane.cache import TtlCache
from chatplane.errors import (
    ChatplaneError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from chatplane.ids import cuid, utcnow
from chatplane.llm.models import (
    DEFAULT_MODEL,
    LOCAL_MODEL,
    TIERS,
    model_for_tier,
    provider_for_model,
)
from chatplane.llm.pricing import PriceTable
from chatplane.llm.types import (
    CompletionParams,
    Finish,
    Message,
    Provider,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    UsageUpdate,
)
from chatplane.ratelimit import RateLimiter, RateLimiterUnavailable
from chatplane.services.projects import tier_models
from chatplane.services.security import SecretBox
from chatplane.services.usage import UsageRow
from chatplane.storage.repositories import ProjectRepository

ROLES = ("system", "user", "assistant", "tool")
MAX_TOKENS_LIMIT = 200_000
DEFAULT_MAX_TOKENS = 4096
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
RUNTIME_NOT_CONFIGURED = "Runtime not configured"


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A completion request, already converted from the wire."""

    project_id: str
    messages: tuple[Message, ...]
    session_id: str = ""
    tools: tuple[ToolSpec, ...] = ()
    model_id: str = ""
    tier: str = ""
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    model_id: str
    provider: str
    source: str


@dataclass(frozen=True, slots=True)
class StreamFailed:
    error: str


@dataclass(frozen=True, slots=True)
class StreamCompleted:
    input_tokens: int
    output_tokens: int
    total_tokens: int
    estimated_cost: float | None
    latency_ms: int


ChatEvent = (
    StreamMetadata
    | TextDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | UsageUpdate
    | StreamFailed
    | StreamCompleted
)


@dataclass(frozen=True, slots=True)
class ChatResult:
    content: str
    tool_calls: tuple[ToolCall, ...]
    model: str
    finish_reason: str
    input_tokens: int
    output_tokens: int
    estimated_cost: float | None
    latency_ms: int


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """A project's and its tenant's model settings, as resolution needs them."""

    tier_models: dict[str, str]
    project_model: str
    tenant_model: str
    anthropic_key: str | None


@dataclass(frozen=True, slots=True)
class Resolved:
    model: str
    provider: Provider
    source: str  # request, tier, project, tenant, server


def validate(request: ChatRequest) -> None:
    """The seed's limits; errors name the offending field."""

    def bad(message: str, field: str) -> InvalidArgument:
        return InvalidArgument(f"Invalid request: {message}", field=field)

    if not request.project_id:
        raise bad("projectId is required", "projectId")
    if not request.messages:
        raise bad("messages must contain at least one message", "messages")
    for i, message in enumerate(request.messages):
        if message.role not in ROLES:
            raise bad(
                f"messages[{i}].role must be one of {', '.join(ROLES)}", f"messages[{i}].role"
            )
        if message.content == "" and not message.tool_calls:
            raise bad(f"messages[{i}].content is required", f"messages[{i}].content")
        if message.role == "tool" and not message.tool_call_id:
            raise bad(
                f"messages[{i}].tool_call_id is required for role tool",
                f"messages[{i}].tool_call_id",
            )
    if all(m.role == "system" for m in request.messages):
        raise bad("messages must include at least one non-system message", "messages")
    if request.temperature is not None and not 0 <= request.temperature <= 2:
        raise bad("temperature must be between 0 and 2", "temperature")
    if request.max_tokens is not None and not 1 <= request.max_tokens <= MAX_TOKENS_LIMIT:
        raise bad("maxTokens must be between 1 and 200000", "maxTokens")
    if request.tier and request.tier not in TIERS:
        raise bad("tier must be one of fast, balanced, powerful", "tier")
    for i, tool in enumerate(request.tools):
        if not _TOOL_NAME.match(tool.name):
            raise bad(f"tools[{i}].name must be 1-64 letters, digits, _ or -", f"tools[{i}].name")
        if not tool.description:
            raise bad(f"tools[{i}].description is required", f"tools[{i}].description")
        if not tool.parameters:
            raise bad(
                f"tools[{i}].parameters (a JSON Schema) is required", f"tools[{i}].parameters"
            )


ProviderFactory = Callable[[str], Provider]


class ChatService:
    """Runs completions. `anthropic_for(api_key)` builds (and caches) Anthropic providers."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        box: SecretBox,
        prices: PriceTable,
        usage: Callable[[UsageRow], None],
        local: Provider,
        anthropic_for: ProviderFactory,
        server_anthropic_key: str | None,
        session_limiter: RateLimiter | None = None,
        config_ttl: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._prices = prices
        self._record = usage
        self._local = local
        self._anthropic_for = anthropic_for
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
        async with self._sessions() as session:
            row = await ProjectRepository(session).get_with_tenant(tenant_id, project_id)
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

    async def _check_session_rate(self, tenant_id: str, session_id: str) -> None:
        """The seed's per-session limit (`sessionId` is "for rate limiting")."""
        if not session_id or self._session_limiter is None:
            return
        try:
            decision = await self._session_limiter.hit(f"session:{tenant_id}:{session_id}")
        except RateLimiterUnavailable as exc:
            raise Unavailable("Rate limiter unavailable", reason="RATE_LIMITER_DOWN") from exc
        if not decision.allowed:
            raise ResourceExhausted(
                "Session message rate limit exceeded",
                reason="SESSION_RATE_LIMIT_EXCEEDED",
                headers=decision.headers(),
            )

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop cached settings after a change to the tenant or one of its projects."""
        self._configs.discard_where(lambda key, _: key[0] == tenant_id)

    def _resolve(self, config: RuntimeConfig, request: ChatRequest) -> Resolved:
        key = config.anthropic_key
        if request.model_id:
            model, source = request.model_id, "request"
        elif request.tier and config.tier_models.get(request.tier):
            model, source = config.tier_models[request.tier], "tier"
        elif config.project_model:
            model, source = config.project_model, "project"
        elif config.tenant_model:
            model, source = config.tenant_model, "tenant"
        elif key:
            model = model_for_tier(request.tier) if request.tier else DEFAULT_MODEL
            source = "server"
        else:
            model, source = LOCAL_MODEL, "server"
        try:
            provider = provider_for_model(model)
        except InvalidArgument:
            raise Unavailable(
                f"{RUNTIME_NOT_CONFIGURED}: no provider serves model {model!r}",
                reason="RUNTIME_NOT_CONFIGURED",
            ) from None
        if provider == "local":
            return Resolved(model, self._local, source)
        if not key:
            raise Unavailable(
                f"{RUNTIME_NOT_CONFIGURED}: no Anthropic credentials for model {model!r}",
                reason="RUNTIME_NOT_CONFIGURED",
            )
        return Resolved(model, self._anthropic_for(key), source)

    async def prepare(
        self, tenant_id: str, request: ChatRequest
    ) -> tuple[Resolved, CompletionParams]:
        validate(request)
        await self._check_session_rate(tenant_id, request.session_id)
        resolved = self._resolve(await self._config(tenant_id, request.project_id), request)
        params = CompletionParams(
            model=resolved.model,
            messages=request.messages,
            tools=request.tools,
            temperature=request.temperature,
            max_tokens=request.max_tokens or DEFAULT_MAX_TOKENS,
        )
        return resolved, params

    def _usage(
        self,
        tenant_id: str,
        request: ChatRequest,
        resolved: Resolved,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_read: int = 0,
        cache_write: int = 0,
        cost: float | None,
        latency_ms: int,
        ttft_ms: int | None,
        finish_reason: str,
        status: str,
    ) -> None:
        # A plain row, not a model instance: cheap on the hot path, bulk-inserted later.
        self._record(
            {
                "id": cuid(),
                "tenant_id": tenant_id,
                "project_id": request.project_id,
                "session_id": request.session_id,
                "model": resolved.model,
                "provider": resolved.provider.name,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_read_tokens": cache_read,
                "cache_write_tokens": cache_write,
                "cost": cost,
                "latency_ms": latency_ms,
                "ttft_ms": ttft_ms,
                "finish_reason": finish_reason,
                "status": status,
                "created_at": utcnow(),
            }
        )

    async def complete(self, tenant_id: str, request: ChatRequest) -> ChatResult:
        started = time.perf_counter()
        resolved, params = await self.prepare(tenant_id, request)
        try:
            result = await resolved.provider.complete(params)
        except BaseException as exc:
            self._usage(
                tenant_id,
                request,
                resolved,
                input_tokens=0,
                output_tokens=0,
                cost=None,
                latency_ms=_ms(started),
                ttft_ms=None,
                finish_reason="",
                status=_status_of(exc),
            )
            raise
        cost = self._prices.cost(
            resolved.model,
            result.input_tokens,
            result.output_tokens,
            result.cache_read_tokens,
            result.cache_write_tokens,
        )
        latency = _ms(started)
        self._usage(
            tenant_id,
            request,
            resolved,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cache_read=result.cache_read_tokens,
            cache_write=result.cache_write_tokens,
            cost=cost,
            latency_ms=latency,
            ttft_ms=None,
            finish_reason=result.finish_reason,
            status="ok",
        )
        return ChatResult(
            content=result.content,
            tool_calls=result.tool_calls,
            model=resolved.model,
            finish_reason=result.finish_reason,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            estimated_cost=cost,
            latency_ms=latency,
        )

    async def stream(self, tenant_id: str, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        """Events as the model emits them.

        Errors before the model's first event raise (the caller gets a real status);
        after it they become one StreamFailed event and the stream ends. Token usage
        goes out once, as `usage` right before `complete` (as in the seed); it is
        recorded in every case, including a client that goes away (status `cancelled`).
        """
        started = time.perf_counter()
        resolved, params = await self.prepare(tenant_id, request)
        usage = UsageUpdate(0, 0)
        finish: Finish | None = None
        ttft: int | None = None
        started_streaming = False
        status = "ok"
        cost: float | None = None
        try:
            async with contextlib.aclosing(resolved.provider.stream(params)) as events:
                async for event in events:
                    if not started_streaming:
                        # The upstream accepted the call: from here on errors are in-band.
                        started_streaming = True
                        yield StreamMetadata(
                            resolved.model, resolved.provider.name, resolved.source
                        )
                    if isinstance(event, Finish):
                        finish = event
                    elif isinstance(event, UsageUpdate):
                        usage = event  # kept for partial accounting; sent once, at the end
                    else:
                        if ttft is None:
                            ttft = _ms(started)
                        yield event
            if finish is None:  # provider contract: Finish ends every successful stream
                raise Unavailable("The model stream ended before it finished")
            yield UsageUpdate(finish.input_tokens, finish.output_tokens)
            cost = self._prices.cost(
                resolved.model,
                finish.input_tokens,
                finish.output_tokens,
                finish.cache_read_tokens,
                finish.cache_write_tokens,
            )
            yield StreamCompleted(
                input_tokens=finish.input_tokens,
                output_tokens=finish.output_tokens,
                total_tokens=finish.input_tokens + finish.output_tokens,
                estimated_cost=cost,
                latency_ms=_ms(started),
            )
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
            self._usage(
                tenant_id,
                request,
                resolved,
                input_tokens=finish.input_tokens if finish else usage.input_tokens,
                output_tokens=finish.output_tokens if finish else usage.output_tokens,
                cache_read=finish.cache_read_tokens if finish else 0,
                cache_write=finish.cache_write_tokens if finish else 0,
                cost=cost,
                latency_ms=_ms(started),
                ttft_ms=ttft,
                finish_reason=finish.finish_reason if finish else "",
                status=status,
            )


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _status_of(exc: BaseException) -> str:
    return "error" if isinstance(exc, Exception) else "cancelled"


def sse_frame(event: ChatEvent) -> bytes:
    """`event: NAME\\ndata: JSON\\n\\n` with the seed's field names."""
    name, data = _sse_payload(event)
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {name}\ndata: {body}\n\n".encode()


def _sse_payload(event: ChatEvent) -> tuple[str, dict[str, Any]]:
    match event:
        case StreamMetadata(model_id, provider, source):
            return "metadata", {"modelId": model_id, "provider": provider, "source": source}
        case TextDelta(delta):
            return "text_delta", {"delta": delta}
        case ToolCallStart(call_id, name):
            return "tool_call_start", {"id": call_id, "name": name}
        case ToolCallDelta(call_id, arguments):
            return "tool_call_delta", {"id": call_id, "arguments": arguments}
        case ToolCallEnd(call_id, name, arguments):
            return "tool_call_end", {"id": call_id, "name": name, "arguments": arguments}
        case UsageUpdate(input_tokens, output_tokens):
            return "usage", {"inputTokens": input_tokens, "outputTokens": output_tokens}
        case StreamFailed(error):
            return "error", {"error": error}
        case StreamCompleted(inp, out, total, cost, latency):
            return "complete", {
                "inputTokens": inp,
                "outputTokens": out,
                "totalTokens": total,
                "estimatedCost": cost,
                "latencyMs": latency,
            }
    raise TypeError(f"not a chat event: {event!r}")
