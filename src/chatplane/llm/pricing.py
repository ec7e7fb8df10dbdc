"""Per-model prices and request cost.

Prices are USD per million tokens. The packaged prices.json holds list prices; an override
file (CHATPLANE_PRICES_FILE) of the same shape replaces or extends entries. A model
without a price has an unknown cost (None), never a guessed one.

Override file shape: {"models": {"<model>": {"input": 3, "output": 15,
"cache_read": 0.3, "cache_write": 3.75}}} (or the inner mapping alone). An entry for a
model already priced may give only the fields it changes; a new model needs input and
output, and its missing cache prices follow Anthropic's published multipliers
(read 0.1 x input, 5-minute write 1.25 x input).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

_FIELDS = ("input", "output", "cache_read", "cache_write")
CACHE_READ_MULTIPLIER = 0.1
CACHE_WRITE_MULTIPLIER = 1.25


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float
    cache_write: float


class PriceTable:
    def __init__(self, prices: Mapping[str, ModelPrice]) -> None:
        self._prices = dict(prices)

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """The packaged prices, with the entries of the file at `path` (if given) on top."""
        packaged = resources.files("chatplane.llm").joinpath("prices.json").read_text("utf-8")
        prices = _parse(json.loads(packaged), {}, source="packaged prices.json")
        if path is not None:
            try:
                raw = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read prices file {path}: {exc}") from exc
            prices = _parse(raw, prices, source=str(path))
        return cls(prices)

    def get(self, model: str) -> ModelPrice | None:
        return self._prices.get(model)

    def models(self) -> list[str]:
        return sorted(self._prices)

    def cost(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cache_read: int = 0,
        cache_write: int = 0,
    ) -> float | None:
        """USD cost of one request, rounded to 8 decimals; None for a model without a price."""
        price = self._prices.get(model)
        if price is None:
            return None
        micro_usd = (
            input_tokens * price.input
            + output_tokens * price.output
            + cache_read * price.cache_read
            + cache_write * price.cache_write
        )
        return round(micro_usd / 1_000_000, 8)


def _parse(raw: Any, base: dict[str, ModelPrice], *, source: str) -> dict[str, ModelPrice]:
    """Merge the entries of a prices document over `base` (which is not modified)."""
    models = raw.get("models", raw) if isinstance(raw, dict) else None
    if not isinstance(models, dict):
        raise ValueError(f"{source}: expected an object of model prices")
    out = dict(base)
    for model, entry in models.items():
        if not isinstance(entry, dict):
            raise ValueError(f"{source}: price of {model!r} must be an object")
        values: dict[str, float] = {}
        for key, value in entry.items():
            if key not in _FIELDS:
                raise ValueError(f"{source}: unknown price field {key!r} for {model!r}")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{source}: {model}.{key} must be a non-negative number")
            values[key] = float(value)
        existing = out.get(model)
        if existing is not None:
            out[model] = replace(existing, **values)
            continue
        if "input" not in values or "output" not in values:
            raise ValueError(f"{source}: new model {model!r} needs at least input and output")
        values.setdefault("cache_read", round(values["input"] * CACHE_READ_MULTIPLIER, 6))
        values.setdefault("cache_write", round(values["input"] * CACHE_WRITE_MULTIPLIER, 6))
        out[model] = ModelPrice(**values)
    return out
