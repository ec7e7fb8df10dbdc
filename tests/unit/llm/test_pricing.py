"""Per-model prices: the packaged table and override files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatplane.llm.models import LOCAL_MODEL
from chatplane.llm.pricing import PriceTable


def test_price_table_costs() -> None:
    table = PriceTable.load()
    assert table.cost("claude-sonnet-4-6", 1_000_000, 1_000_000) == 18.0
    assert table.cost("claude-sonnet-4-6", 42, 128) == round((42 * 3 + 128 * 15) / 1e6, 8)
    assert table.cost("claude-haiku-4-5", 0, 0, cache_read=1_000_000, cache_write=1_000_000) == 1.35
    assert table.cost(LOCAL_MODEL, 500, 500) == 0.0
    assert table.cost("claude-unknown-9", 10, 10) is None
    assert table.cost("gpt-4o", 10, 10) is None


def test_price_table_override_file(tmp_path: Path) -> None:
    override = tmp_path / "prices.json"
    override.write_text(
        json.dumps(
            {
                "models": {
                    "claude-sonnet-4-6": {"input": 2.5},
                    "claude-sonnet-5": {"input": 4, "output": 20},
                }
            }
        )
    )
    table = PriceTable.load(override)
    sonnet = table.get("claude-sonnet-4-6")
    assert sonnet is not None and (sonnet.input, sonnet.output) == (2.5, 15.0)
    new = table.get("claude-sonnet-5")
    assert new is not None and (new.cache_read, new.cache_write) == (0.4, 5.0)
    assert table.cost("claude-haiku-4-5", 1_000_000, 0) == 1.0  # untouched entries stay

    override.write_text(json.dumps({"models": {"claude-x": {"input": 1}}}))
    with pytest.raises(ValueError, match="needs at least input and output"):
        PriceTable.load(override)
    override.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read prices file"):
        PriceTable.load(override)
