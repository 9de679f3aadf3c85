"""The result type of the local moderator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ModerationScores"]


@dataclass(frozen=True, slots=True)
class ModerationScores:
    """Per-category scores in [0, 1] for one text.

    Scores are kept separate from the decision so that a policy can apply its own
    thresholds (per tier, per app) without rescoring the text.
    """

    scores: Mapping[str, float]

    def flagged(self, thresholds: Mapping[str, float]) -> tuple[str, ...]:
        """Categories whose score reaches their threshold, in ``scores`` order.

        A category missing from ``thresholds`` is never flagged: a policy disables a
        category by leaving it out.
        """
        return tuple(
            cat
            for cat, score in self.scores.items()
            if cat in thresholds and score >= thresholds[cat]
        )

    def max_score(self) -> float:
        """The highest category score (0.0 when there are none)."""
        return max(self.scores.values(), default=0.0)
