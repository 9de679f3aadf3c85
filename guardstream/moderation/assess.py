"""From backend outcomes to findings and a block decision, by the policy.

Shared by the moderate stage (the request's messages) and the output stage (the answer), so
both report the same finding shapes: `type` = category, `action` = `blocked` or `flagged`,
`score`, `message` = index into the request's messages (None for the answer), `layer` =
the backend that scored it. Never any text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from guardstream.models import Finding
from guardstream.moderation.base import ModerationOutcome

if TYPE_CHECKING:
    from guardstream.policy import ModeratePolicy

__all__ = [
    "NON_BLOCKING_DEFAULT",
    "UNAVAILABLE_FINDING",
    "Assessment",
    "assess",
    "blocking_categories",
]

# Categories reported but not blocked unless the policy lists them in `block_categories`.
NON_BLOCKING_DEFAULT: frozenset[str] = frozenset({"profanity"})
UNAVAILABLE_FINDING = "moderation_unavailable"

_ALL = ("harassment", "hate", "self-harm", "sexual", "sexual/minors", "violence", "illicit",
        "profanity")


def blocking_categories(policy: ModeratePolicy) -> frozenset[str]:
    """The policy's `block_categories`, or every category but profanity when unset."""
    if policy.block_categories is not None:
        return frozenset(policy.block_categories)
    return frozenset(_ALL) - NON_BLOCKING_DEFAULT


@dataclass(frozen=True, slots=True)
class Assessment:
    findings: tuple[Finding, ...]
    blocking: tuple[str, ...]
    score: float | None

    @property
    def blocked(self) -> bool:
        return bool(self.blocking)

    def detail(self) -> str:
        """For people: which categories blocked (names only, never the text)."""
        return f"content policy violation: {', '.join(self.blocking)}"


def assess(outcomes: Sequence[ModerationOutcome], indices: Sequence[int | None], *,
           stage: str, block: Iterable[str], configured_backend: str) -> Assessment:
    """Findings for every flagged category of every outcome, and the categories that block.

    `indices[i]` is the message index `outcomes[i]` belongs to. When the configured backend
    did not answer, one `moderation_unavailable` finding says what happened instead
    (`fallback_local` or `fail_open`), layer = the backend that failed.
    """
    block_set = frozenset(block)
    findings: list[Finding] = []
    blocking: dict[str, None] = {}
    score: float | None = None
    degraded: ModerationOutcome | None = None
    for outcome, index in zip(outcomes, indices, strict=True):
        if outcome.degraded is not None and degraded is None:
            degraded = outcome
        for category in outcome.flagged:
            value = float(outcome.scores.get(category, 1.0))
            blocks = category in block_set
            findings.append(Finding(stage=stage, type=category,
                                    action="blocked" if blocks else "flagged",
                                    score=value, message=index, layer=outcome.backend))
            if blocks:
                blocking[category] = None
                score = value if score is None else max(score, value)
    if degraded is not None:
        action = "fallback_local" if degraded.checked else "fail_open"
        findings.insert(0, Finding(stage=stage, type=UNAVAILABLE_FINDING, action=action,
                                   score=0.0, layer=configured_backend))
    ordered = tuple(c for c in _ALL if c in blocking) + tuple(
        c for c in blocking if c not in _ALL)
    return Assessment(tuple(findings), ordered, score)
