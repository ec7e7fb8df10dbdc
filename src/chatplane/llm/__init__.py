"""LLM provider layer: provider-neutral types, message validation, prices, models.

The providers live in their own modules (`chatplane.llm.anthropic`, `chatplane.llm.local`)
and are not imported here: importing `chatplane.llm` does not import the Anthropic SDK.
"""

from chatplane.llm.messages import validate_messages
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
    TokenUsage,
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
    "Completion",
    "CompletionParams",
    "Finish",
    "Message",
    "ModelPrice",
    "PriceTable",
    "Provider",
    "ProviderEvent",
    "TextDelta",
    "Tier",
    "TokenUsage",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "ToolSpec",
    "UsageUpdate",
    "collect",
    "model_for_tier",
    "provider_for_model",
    "validate_messages",
]
