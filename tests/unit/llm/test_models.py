"""Model ids, tiers and which provider serves a model."""

from __future__ import annotations

import typing

import pytest
from anthropic.resources.messages.messages import DEPRECATED_MODELS
from anthropic.types import Model

from chatplane.errors import InvalidArgument
from chatplane.llm.models import (
    DEFAULT_MODEL,
    DEFAULT_TIER_MODELS,
    LOCAL_MODEL,
    model_for_tier,
    provider_for_model,
)
from chatplane.llm.pricing import PriceTable


def test_tier_defaults_are_current_sdk_models_with_prices() -> None:
    sdk_models = set(typing.get_args(typing.get_args(Model)[0]))
    table = PriceTable.load()
    assert set(DEFAULT_TIER_MODELS) == {"fast", "balanced", "powerful"}
    for tier, model in DEFAULT_TIER_MODELS.items():
        assert model in sdk_models, model
        assert model not in DEPRECATED_MODELS, model
        assert table.get(model) is not None, model
        assert model_for_tier(tier) == model
    assert DEFAULT_TIER_MODELS["balanced"] == DEFAULT_MODEL
    # Every priced Claude model is one the SDK knows and does not deprecate.
    for model in table.models():
        if model != LOCAL_MODEL:
            assert model in sdk_models and model not in DEPRECATED_MODELS, model


def test_provider_for_model() -> None:
    assert provider_for_model(LOCAL_MODEL) == "local"
    assert provider_for_model(DEFAULT_MODEL) == "anthropic"
    with pytest.raises(InvalidArgument):
        provider_for_model("gpt-4o")
    with pytest.raises(InvalidArgument):
        model_for_tier("turbo")
