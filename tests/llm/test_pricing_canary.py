"""The price table (snapshots, overrides, unknown models) and the canary sentence."""

from __future__ import annotations

import logging

import pytest

from guardstream.llm.canary import CANARY_PREFIX, new_canary, with_canary
from guardstream.llm.pricing import DEFAULT_PRICES, Price, cost_usd, price_for
from guardstream.models import ChatMessage


@pytest.mark.parametrize(("model", "base"), [
    ("gpt-4o-mini", "gpt-4o-mini"),
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),   # snapshot -> base, longest prefix
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("openai/gpt-4.1-nano", "gpt-4.1-nano"),     # router prefix
    ("gpt-4.1", "gpt-4.1"),
])
def test_price_resolution(model: str, base: str) -> None:
    assert price_for(model) == DEFAULT_PRICES[base]


def test_cost_is_tokens_times_price_per_million() -> None:
    price = DEFAULT_PRICES["gpt-4o"]
    expected = (1000 * price.input_per_million + 500 * price.output_per_million) / 1e6
    assert cost_usd("gpt-4o", 1000, 500) == pytest.approx(expected)


def test_overrides_win_and_extend() -> None:
    overrides = {"gpt-4o": Price(1.0, 2.0), "my-finetune": Price(3.0, 4.0)}
    assert cost_usd("gpt-4o", 1_000_000, 1_000_000, overrides) == pytest.approx(3.0)
    assert cost_usd("my-finetune-v2", 1_000_000, 0, overrides) == pytest.approx(3.0)


def test_unknown_model_costs_zero_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert cost_usd("llama-local-x1", 100, 100) == 0.0
    assert cost_usd("llama-local-x1", 100, 100) == 0.0
    assert caplog.text.count("llama-local-x1") == 1


def test_canary_is_random_per_request() -> None:
    tokens = {new_canary() for _ in range(100)}
    assert len(tokens) == 100
    assert all(t.startswith(CANARY_PREFIX) and len(t) > 20 for t in tokens)


@pytest.mark.parametrize(("messages", "system_index", "count"), [
    ([ChatMessage("user", "hi")], 0, 2),
    ([ChatMessage("system", "Be brief."), ChatMessage("user", "hi")], 0, 2),
    ([ChatMessage("user", "hi"), ChatMessage("system", "Late."), ChatMessage("system", "X")],
     1, 3),
])
def test_with_canary(messages: list[ChatMessage], system_index: int, count: int) -> None:
    token = new_canary()
    shaped = with_canary(messages, token)
    assert len(shaped) == count
    assert shaped[system_index].role == "system"
    assert token in shaped[system_index].content
    assert sum(token in m.content for m in shaped) == 1
    original = [m for m in messages if m.role == "system"]
    if original:
        assert shaped[system_index].content.startswith(original[0].content)
    assert all(token not in m.content for m in messages)  # the input is untouched
