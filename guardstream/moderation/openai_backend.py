"""The `openai` backend: OpenAI's moderation endpoint through the openai SDK.

OpenAI reports subcategories (`self-harm/intent`, `harassment/threatening`,
`illicit/violent`, ...); they are folded into our top-level categories (the highest
subcategory score wins) so policies, findings and dashboards read the same whichever
backend scored. OpenAI has no `profanity` category.

Every SDK and transport error is translated here into `ModerationUnavailable` with a
cause code: the provider's messages can echo the request, so they never travel further.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import openai

from guardstream.moderation.base import ModerationOutcome, ModerationUnavailable

if TYPE_CHECKING:
    from guardstream.policy import ModeratePolicy
    from guardstream.settings import Settings

__all__ = ["NO_KEY", "OPENAI_CATEGORY_MAP", "OpenAIBackend", "openai_api_key"]

log = logging.getLogger("guardstream.moderation")

# Sent when no key is configured: a local OpenAI-compatible server ignores it, and
# api.openai.com answers 401, which becomes the `rejected` cause (and the fallback).
NO_KEY = "guardstream-no-key"

OPENAI_CATEGORY_MAP: Mapping[str, str] = MappingProxyType({
    "harassment": "harassment",
    "harassment/threatening": "harassment",
    "hate": "hate",
    "hate/threatening": "hate",
    "self-harm": "self-harm",
    "self-harm/intent": "self-harm",
    "self-harm/instructions": "self-harm",
    "sexual": "sexual",
    "sexual/minors": "sexual/minors",
    "violence": "violence",
    "violence/graphic": "violence",
    "illicit": "illicit",
    "illicit/violent": "illicit",
})

_ORDER: tuple[str, ...] = tuple(dict.fromkeys(OPENAI_CATEGORY_MAP.values()))

# OpenAI accepts a list of inputs per call; bounded so one huge request cannot make one
# huge upstream call.
_BATCH = 32


def openai_api_key() -> str:
    """The API key for the moderation endpoint.

    Why a function: key providers (`guardstream.llm.keys`) are being written separately;
    this is the one place to swap in once they land.
    """
    return os.environ.get("OPENAI_API_KEY") or NO_KEY


class OpenAIBackend:
    """Moderation by `omni-moderation-latest` (or the policy's `openai_model`).

    `thresholds` (policy `openai_thresholds`) decide a category by score; for categories
    without one, OpenAI's own flag for any of its subcategories decides.
    """

    name = "openai"

    def __init__(self, client: openai.AsyncOpenAI, *, model: str,
                 thresholds: Mapping[str, float] | None = None,
                 deadline_seconds: float | None = None) -> None:
        self._client = client
        self._model = model
        self.thresholds: Mapping[str, float] = MappingProxyType(dict(thresholds or {}))
        self._deadline = deadline_seconds

    @classmethod
    def from_policy(cls, settings: Settings, policy: ModeratePolicy) -> OpenAIBackend:
        """A backend with its own client: per-attempt timeout and SDK retries (429, 5xx,
        connection errors, with backoff) from the policy, bounded overall by a deadline so
        a provider asking to retry later cannot stall the stage."""
        client = openai.AsyncOpenAI(api_key=openai_api_key(),
                                    base_url=settings.openai_base_url,
                                    timeout=policy.timeout_seconds,
                                    max_retries=policy.max_retries)
        deadline = policy.timeout_seconds * (policy.max_retries + 1) + 2.0 * policy.max_retries
        thresholds = {str(category): value
                      for category, value in policy.openai_thresholds.items()}
        return cls(client, model=policy.openai_model, thresholds=thresholds,
                   deadline_seconds=deadline)

    async def moderate(self, texts: Sequence[str]) -> list[ModerationOutcome]:
        outcomes: list[ModerationOutcome] = []
        for start in range(0, len(texts), _BATCH):
            outcomes.extend(await self._call(list(texts[start : start + _BATCH])))
        return outcomes

    async def aclose(self) -> None:
        await self._client.close()

    async def _call(self, batch: list[str]) -> list[ModerationOutcome]:
        try:
            async with asyncio.timeout(self._deadline):
                response = await self._client.moderations.create(model=self._model,
                                                                 input=batch)
        except TimeoutError:
            raise self._unavailable("timeout") from None
        except openai.APITimeoutError:
            raise self._unavailable("timeout") from None
        except openai.APIConnectionError:
            raise self._unavailable("connection") from None
        except openai.RateLimitError:
            raise self._unavailable("rate_limited") from None
        except openai.InternalServerError as exc:
            raise self._unavailable("server_error", exc.status_code) from None
        except openai.APIStatusError as exc:
            raise self._unavailable("rejected", exc.status_code) from None
        except (openai.APIError, ValueError, TypeError):
            # APIResponseValidationError, or a body that is not JSON (JSONDecodeError).
            raise self._unavailable("bad_response") from None
        try:
            results = list(response.results)
            if len(results) != len(batch):
                raise ValueError("result count")
            return [self._outcome(r) for r in results]
        except (AttributeError, TypeError, ValueError):
            raise self._unavailable("bad_response") from None

    def _unavailable(self, cause: str, status: int | None = None) -> ModerationUnavailable:
        log.warning("moderation backend openai unavailable: cause=%s status=%s", cause, status)
        return ModerationUnavailable(cause)

    def _outcome(self, result: Any) -> ModerationOutcome:
        raw_scores: dict[str, object] = result.category_scores.to_dict(warnings=False)
        raw_flags: dict[str, object] = result.categories.to_dict(warnings=False)
        scores: dict[str, float] = {}
        flagged_by_openai: set[str] = set()
        for sub, value in raw_scores.items():
            category = OPENAI_CATEGORY_MAP.get(sub)
            if category is None:
                continue  # a category OpenAI added after this map was written
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError("non-numeric score")
            scores[category] = max(scores.get(category, 0.0), min(1.0, max(0.0, float(value))))
        for sub, value in raw_flags.items():
            category = OPENAI_CATEGORY_MAP.get(sub)
            if category is not None and value is True:
                flagged_by_openai.add(category)
                scores.setdefault(category, 0.0)
        ordered = {c: scores[c] for c in _ORDER if c in scores}
        flagged = tuple(
            category for category, score in ordered.items()
            if (score >= self.thresholds[category] if category in self.thresholds
                else category in flagged_by_openai)
        )
        return ModerationOutcome(ordered, flagged, self.name)
