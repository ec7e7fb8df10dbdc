"""Model resolution: a pure function, every rule and its source."""

from __future__ import annotations

import pytest

from chatplane.chat.resolution import resolve_model
from chatplane.chat.types import ModelSource, RuntimeConfig
from chatplane.errors import Unavailable
from chatplane.llm.models import DEFAULT_MODEL, DEFAULT_TIER_MODELS, LOCAL_MODEL


def config(
    *,
    tiers: dict[str, str] | None = None,
    project: str = "",
    tenant: str = "",
    key: str | None = "k",
) -> RuntimeConfig:
    return RuntimeConfig(tiers or {}, project, tenant, key)


def test_request_model_wins_over_everything() -> None:
    got = resolve_model(
        config(tiers={"fast": "claude-x"}, project="claude-p", tenant="claude-t"),
        model_id="claude-r",
        tier="fast",
    )
    assert (got.model, got.source, got.provider, got.credential) == (
        "claude-r",
        ModelSource.REQUEST,
        "anthropic",
        "k",
    )


@pytest.mark.parametrize(
    ("cfg", "tier", "model", "source"),
    [
        (config(tiers={"fast": "claude-f"}, project="claude-p"), "fast", "claude-f", "tier"),
        (config(tiers={"fast": "claude-f"}, project="claude-p"), "powerful", "claude-p", "project"),
        (config(project="claude-p", tenant="claude-t"), "", "claude-p", "project"),
        (config(tenant="claude-t"), "", "claude-t", "tenant"),
        (config(), "", DEFAULT_MODEL, "server"),
        (config(), "fast", DEFAULT_TIER_MODELS["fast"], "server"),
        (config(key=None), "", LOCAL_MODEL, "server"),
    ],
)
def test_precedence(cfg: RuntimeConfig, tier: str, model: str, source: str) -> None:
    got = resolve_model(cfg, tier=tier)
    assert (got.model, str(got.source)) == (model, source)


def test_local_model_needs_no_credential() -> None:
    got = resolve_model(config(key=None), model_id=LOCAL_MODEL)
    assert (got.provider, got.credential) == ("local", None)


def test_claude_model_without_credentials_is_unavailable() -> None:
    with pytest.raises(Unavailable) as err:
        resolve_model(config(key=None), model_id="claude-sonnet-4-6")
    assert err.value.reason == "RUNTIME_NOT_CONFIGURED"
    assert err.value.message.startswith("Runtime not configured")


def test_unknown_model_is_unavailable() -> None:
    with pytest.raises(Unavailable, match="no provider serves model 'gpt-9'"):
        resolve_model(config(), model_id="gpt-9")
