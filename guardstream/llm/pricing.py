"""What a call cost: tokens times the model's price per million tokens.

The table holds OpenAI's list prices (USD per 1M tokens, standard tier, no cached-input
discount) as published in 2025; prices change, so the policy's `stages.llm.prices`
overrides or extends it per model. Dated snapshots (`gpt-4o-mini-2024-07-18`) and
router-style prefixes (`openai/gpt-4o`) resolve to their base model. A model with no
price costs 0 and is logged once, so budgets never silently charge a made-up number.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_PRICES", "PRICES_AS_OF", "Price", "cost_usd", "price_for"]

log = logging.getLogger("guardstream.llm.pricing")

PRICES_AS_OF = "2025-08"


@dataclass(frozen=True, slots=True)
class Price:
    input_per_million: float
    output_per_million: float


DEFAULT_PRICES: Mapping[str, Price] = {
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "o3": Price(2.00, 8.00),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    "gpt-3.5-turbo": Price(0.50, 1.50),
}

_SAFE_NAME = re.compile(r"[A-Za-z0-9._:/-]{1,80}")
_warned: set[str] = set()


def price_for(model: str, overrides: Mapping[str, Price] | None = None) -> Price | None:
    """The price of `model`: an exact entry, else the longest `<entry>-...` prefix
    (snapshots), tried on the name and on its last `/` segment; overrides win."""
    table: dict[str, Price] = {**DEFAULT_PRICES, **(overrides or {})}
    for name in dict.fromkeys((model, model.rsplit("/", 1)[-1])):
        if name in table:
            return table[name]
        prefixes = [key for key in table if name.startswith(key + "-")]
        if prefixes:
            return table[max(prefixes, key=len)]
    return None


def cost_usd(model: str, input_tokens: int, output_tokens: int,
             overrides: Mapping[str, Price] | None = None) -> float:
    """USD cost of one call; 0.0 (logged once per model) when the model has no price."""
    price = price_for(model, overrides)
    if price is None:
        if model not in _warned:
            _warned.add(model)
            # The model name comes from the request: log it only if it looks like one.
            shown = model if _SAFE_NAME.fullmatch(model) else "<unprintable>"
            log.warning("no price for model %s; its cost is counted as 0 (add it to "
                        "stages.llm.prices)", shown)
        return 0.0
    return (input_tokens * price.input_per_million
            + output_tokens * price.output_per_million) / 1_000_000
