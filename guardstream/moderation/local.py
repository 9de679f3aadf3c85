"""The `local` backend: the offline model of `guardstream.detectors.moderation`.

The model is built once per process (`resources.shared("local_moderator", ...)`, shared with
the output stage) and scored on the CPU thread pool so consumers keep heartbeating.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

from guardstream.moderation.base import ModerationOutcome

if TYPE_CHECKING:
    from guardstream.detectors.moderation import LocalModerator
    from guardstream.resources import Resources

__all__ = ["LOCAL_MODERATOR_KEY", "LocalBackend", "local_moderator"]

LOCAL_MODERATOR_KEY = "local_moderator"


def local_moderator(resources: Resources) -> LocalModerator:
    """The process's one `LocalModerator` (loaded on first use, ~1 s)."""
    from guardstream.detectors.moderation import LocalModerator

    return resources.shared(LOCAL_MODERATOR_KEY, LocalModerator)


class LocalBackend:
    """Scores with the local model; thresholds are the model's tuned defaults, overridden
    per category by the policy."""

    name = "local"

    def __init__(self, resources: Resources,
                 overrides: Mapping[str, float] | None = None) -> None:
        self._resources = resources
        self._moderator = local_moderator(resources)
        self.thresholds: Mapping[str, float] = MappingProxyType(
            {**self._moderator.default_thresholds, **(overrides or {})})

    async def moderate(self, texts: Sequence[str]) -> list[ModerationOutcome]:
        if not texts:
            return []
        scored = await self._resources.run_cpu(self._moderator.score_many, list(texts))
        return [ModerationOutcome(s.scores, s.flagged(self.thresholds), self.name)
                for s in scored]

    async def aclose(self) -> None:
        """Nothing to release: the model belongs to the process, not to this backend."""
