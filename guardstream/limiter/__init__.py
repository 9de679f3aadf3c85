"""Token-aware rate limits, daily budgets and usage charging in Redis.

`guardstream.agents.ratelimit` decides per request through `Limiter`; the llm stage
reports what a request really used through `charge_usage`. Both run the one Lua script in
`guardstream.limiter.script`, so every decision and charge is atomic across workers.
"""

from __future__ import annotations

from guardstream.limiter.client import LimitDecision, Limiter, charge_usage, to_nano_usd
from guardstream.limiter.quota import Identity, Quota, is_anonymous, quota_for
from guardstream.limiter.script import SCRIPT, SCRIPT_SHA
from guardstream.limiter.tokens import (
    FALLBACK_ENCODING,
    TokenCounter,
    load_encoding,
    load_token_counter,
)

__all__ = [
    "FALLBACK_ENCODING",
    "SCRIPT",
    "SCRIPT_SHA",
    "Identity",
    "LimitDecision",
    "Limiter",
    "Quota",
    "TokenCounter",
    "charge_usage",
    "is_anonymous",
    "load_encoding",
    "load_token_counter",
    "quota_for",
    "to_nano_usd",
]
