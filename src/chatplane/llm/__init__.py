"""LLM provider layer: provider-neutral types, the Anthropic and local providers, prices, models."""

from chatplane.llm.anthropic_provider import AnthropicProvider
from chatplane.llm.local_provider import LocalProvider
from chatplane.llm.models import (
    DEFAULT_MODEL,
    DEFAULT_TIER_MODELS,
    LOCAL_MODEL,
    Tier,
    model_for_tier,
    provider_for_model,
)
from chatplane.llm.pricing import ModelPrice, PriceTable
from chatplane.llm.types import (
    Completion,
    CompletionParams,
    Finish,
    Message,
    Provider,
    ProviderEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolSpec,
    UsageUpdate,
    collect,
)

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_TIER_MODELS",
    "LOCAL_MODEL",
    "AnthropicProvider",
    "Completion",
    "CompletionParams",
    "Finish",
    "LocalProvider",
    "Message",
    "ModelPrice",
    "PriceTable",
    "Provider",
    "ProviderEvent",
    "TextDelta",
    "Tier",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "ToolSpec",
    "UsageUpdate",
    "collect",
    "model_for_tier",
    "provider_for_model",
]
