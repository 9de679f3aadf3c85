"""The `local` backend: the offline model of `guardstream.detectors.moderation`.

The model is built once per process (`resources.shared("local_moderator", ...)`, shared with
the output stage) and scored on the CPU thread pool so consumers keep heartbeating. Texts
of the requests a worker has in flight are scored together (`Batcher`, no added wait when
idle): a call costs the model fixed numpy work that a batch shares, ~25% of the CPU per
text of the bench mix in batches of 16 (docs/performance.md, tenth round).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

from guardstream.batching import Batcher
from guardstream.moderation.base import ModerationOutcome

if TYPE_CHECKING:
    from guardstream.detectors.moderation import LocalModerator, ModerationScores
    from guardstream.resources import Resources

__all__ = ["LOCAL_BATCH_TEXTS", "LOCAL_MODERATOR_KEY", "LocalBackend", "local_moderator"]

LOCAL_MODERATOR_KEY = "local_moderator"
_LOCAL_SCORER_KEY = "local_moderator_batcher"
#: Texts per model call at most: 16 cost least per text (1, 16, 32, 64 measured).
LOCAL_BATCH_TEXTS = 16


def local_moderator(resources: Resources) -> LocalModerator:
    """The process's one `LocalModerator` (loaded on first use, ~1 s)."""
    from guardstream.detectors.moderation import LocalModerator

    return resources.shared(LOCAL_MODERATOR_KEY, LocalModerator)


def _local_scorer(resources: Resources) -> Batcher[str, ModerationScores]:
    """The process's one batcher over the model: the moderate and output stages of one
    process (`guardstream scan`) share its batches too."""
    moderator = local_moderator(resources)
    return resources.shared(_LOCAL_SCORER_KEY, lambda: Batcher(
        moderator.score_many, resources.run_cpu, max_items=LOCAL_BATCH_TEXTS))


class LocalBackend:
    """Scores with the local model; thresholds are the model's tuned defaults, overridden
    per category by the policy."""

    name = "local"

    def __init__(self, resources: Resources,
                 overrides: Mapping[str, float] | None = None) -> None:
        self._resources = resources
        self._moderator = local_moderator(resources)
        self._scorer = _local_scorer(resources)
        self.thresholds: Mapping[str, float] = MappingProxyType(
            {**self._moderator.default_thresholds, **(overrides or {})})

    async def moderate(self, texts: Sequence[str]) -> list[ModerationOutcome]:
        if not texts:
            return []
        scored = await self._scorer.submit(texts)
        return [ModerationOutcome(s.scores, s.flagged(self.thresholds), self.name)
                for s in scored]

    async def aclose(self) -> None:
        """Nothing to release: the model belongs to the process, not to this backend."""
