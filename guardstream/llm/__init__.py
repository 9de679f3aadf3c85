"""The model call behind the `llm` stage: keys, resilience, idempotency, prices, canary.

Kept apart from the stage (`guardstream.agents.llm`) so each piece is testable alone and
other code (the output stage's structured re-ask, benchmarks) can reuse the client.
"""

from __future__ import annotations

from guardstream.llm.breaker import BreakerRegistry, BreakerState, CircuitBreaker
from guardstream.llm.canary import new_canary, with_canary
from guardstream.llm.client import (
    REQUEST_ID_HEADER,
    ChatAnswer,
    ChatCall,
    LlmClient,
    RetryPolicy,
    UpstreamFailure,
    UpstreamTimedOut,
)
from guardstream.llm.idempotency import (
    Claim,
    ClaimState,
    IdempotencyStore,
    StoredAnswer,
    fingerprint,
)
from guardstream.llm.keys import (
    PLACEHOLDER_KEY,
    AwsSecretsManagerKeyProvider,
    EnvKeyProvider,
    FileKeyProvider,
    KeyProvider,
    KeyUnavailable,
    StaticKeyProvider,
    VaultKeyProvider,
    key_provider_from_settings,
)
from guardstream.llm.pricing import DEFAULT_PRICES, Price, cost_usd, price_for

__all__ = [
    "DEFAULT_PRICES",
    "PLACEHOLDER_KEY",
    "REQUEST_ID_HEADER",
    "AwsSecretsManagerKeyProvider",
    "BreakerRegistry",
    "BreakerState",
    "ChatAnswer",
    "ChatCall",
    "CircuitBreaker",
    "Claim",
    "ClaimState",
    "EnvKeyProvider",
    "FileKeyProvider",
    "IdempotencyStore",
    "KeyProvider",
    "KeyUnavailable",
    "LlmClient",
    "Price",
    "RetryPolicy",
    "StaticKeyProvider",
    "StoredAnswer",
    "UpstreamFailure",
    "UpstreamTimedOut",
    "VaultKeyProvider",
    "cost_usd",
    "fingerprint",
    "key_provider_from_settings",
    "new_canary",
    "price_for",
    "with_canary",
]
