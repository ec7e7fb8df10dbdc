"""Model ids, tiers and which provider serves a model.

The tier defaults are current, non-deprecated ids from the SDK's own list
(`anthropic.types.Model`, minus the SDK's `DEPRECATED_MODELS`), and each has a list price
in prices.json so its cost is known.
"""

from __future__ import annotations

from typing import Literal, get_args

from chatplane.errors import InvalidArgument

Tier = Literal["fast", "balanced", "powerful"]
TIERS: tuple[str, ...] = get_args(Tier)

DEFAULT_TIER_MODELS: dict[str, str] = {
    "fast": "claude-haiku-4-5",
    "balanced": "claude-sonnet-4-6",
    "powerful": "claude-opus-4-8",
}
DEFAULT_MODEL = DEFAULT_TIER_MODELS["balanced"]

# The built-in offline model (LocalProvider). Deliberately not a Claude-looking id.
LOCAL_MODEL = "chatplane-local-echo"


def model_for_tier(tier: str) -> str:
    """The default model of a tier; InvalidArgument for an unknown tier."""
    try:
        return DEFAULT_TIER_MODELS[tier]
    except KeyError:
        raise InvalidArgument(
            f"tier must be one of {', '.join(TIERS)}, got {tier!r}", field="tier"
        ) from None


def provider_for_model(model: str) -> str:
    """ "local" for the built-in model, "anthropic" for claude-* ids; InvalidArgument otherwise."""
    if model == LOCAL_MODEL:
        return "local"
    if model.startswith("claude-"):
        return "anthropic"
    raise InvalidArgument(f"Unknown model {model!r}", field="modelId")
