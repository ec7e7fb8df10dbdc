"""Which model answers a request, and where that choice came from. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from chatplane.chat.types import ModelSource, RuntimeConfig
from chatplane.errors import InvalidArgument, Unavailable
from chatplane.llm.models import DEFAULT_MODEL, LOCAL_MODEL, model_for_tier, provider_for_model

RUNTIME_NOT_CONFIGURED = "Runtime not configured"


@dataclass(frozen=True, slots=True)
class Resolution:
    model: str
    provider: str  # "anthropic" | "local"
    source: ModelSource
    credential: str | None  # the Anthropic key to call with; None for the local model


def resolve_model(config: RuntimeConfig, *, model_id: str = "", tier: str = "") -> Resolution:
    """First match wins: the request's model, the project's model for the tier, the
    project's default, the tenant's default, then the server's default (a Claude model
    when there are credentials, else the built-in local model)."""
    key = config.anthropic_key
    if model_id:
        model, source = model_id, ModelSource.REQUEST
    elif tier and config.tier_models.get(tier):
        model, source = config.tier_models[tier], ModelSource.TIER
    elif config.project_model:
        model, source = config.project_model, ModelSource.PROJECT
    elif config.tenant_model:
        model, source = config.tenant_model, ModelSource.TENANT
    elif key:
        model, source = (model_for_tier(tier) if tier else DEFAULT_MODEL), ModelSource.SERVER
    else:
        model, source = LOCAL_MODEL, ModelSource.SERVER
    try:
        provider = provider_for_model(model)
    except InvalidArgument:
        raise Unavailable(
            f"{RUNTIME_NOT_CONFIGURED}: no provider serves model {model!r}",
            reason="RUNTIME_NOT_CONFIGURED",
        ) from None
    if provider == "local":
        return Resolution(model, provider, source, None)
    if not key:
        raise Unavailable(
            f"{RUNTIME_NOT_CONFIGURED}: no Anthropic credentials for model {model!r}",
            reason="RUNTIME_NOT_CONFIGURED",
        )
    return Resolution(model, provider, source, key)
