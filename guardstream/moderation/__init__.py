"""Content moderation backends for the moderate and output stages.

`build_backend(resources)` returns the backend the policy (`stages.moderate`) asks for:
`local` (offline model) or `openai` (the moderation endpoint) wrapped with the policy's
fallback. `assess(...)` turns its outcomes into findings and a block decision. The output
stage moderates the model's answer with the same two calls.

Each `build_backend` call returns a new backend (its own HTTP client and breaker; close it
with `aclose()`); the heavy local model is shared per process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from guardstream.moderation.assess import (
    NON_BLOCKING_DEFAULT,
    UNAVAILABLE_FINDING,
    Assessment,
    assess,
    blocking_categories,
)
from guardstream.moderation.base import (
    CAUSES,
    ModerationBackend,
    ModerationOutcome,
    ModerationUnavailable,
)
from guardstream.moderation.fallback import Breaker, FallbackBackend, FallbackMode
from guardstream.moderation.local import LocalBackend
from guardstream.moderation.openai_backend import OpenAIBackend, openai_api_key

if TYPE_CHECKING:
    from guardstream.resources import Resources

__all__ = [
    "CAUSES",
    "NON_BLOCKING_DEFAULT",
    "UNAVAILABLE_FINDING",
    "Assessment",
    "Breaker",
    "FallbackBackend",
    "FallbackMode",
    "LocalBackend",
    "ModerationBackend",
    "ModerationOutcome",
    "ModerationUnavailable",
    "OpenAIBackend",
    "assess",
    "blocking_categories",
    "build_backend",
    "openai_api_key",
]


def build_backend(resources: Resources) -> ModerationBackend:
    """The backend `stages.moderate` configures. Loads the local model when it is the
    backend or the fallback (about a second, once per process): call it from `start()`."""
    policy = resources.settings.policy.stages.moderate
    thresholds = {str(category): value for category, value in policy.thresholds.items()}
    if policy.backend == "local":
        return LocalBackend(resources, thresholds)
    online = OpenAIBackend.from_policy(resources.settings, policy)
    fallback = LocalBackend(resources, thresholds) if policy.fallback == "local" else None
    return FallbackBackend(online, policy.fallback, fallback=fallback,
                           breaker=Breaker(policy.breaker_failures,
                                           policy.breaker_reset_seconds))
