"""The moderation backend interface and its result type.

Backends only score and flag; what blocks is the caller's decision (`assess`), so the
moderate stage and the output stage can share one backend and still apply one policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from guardstream.errors import DependencyError

__all__ = ["CAUSES", "ModerationBackend", "ModerationOutcome", "ModerationUnavailable"]

# Why an online backend did not answer: stable codes for logs and metrics.
CAUSES: tuple[str, ...] = (
    "timeout", "rate_limited", "server_error", "connection", "rejected", "bad_response",
    "circuit_open",
)


@dataclass(frozen=True, slots=True)
class ModerationOutcome:
    """Scores and flagged categories for one text.

    `backend` names who scored it (`local`, `openai`, or `none` when nothing did because
    the policy fails open). `degraded` is the cause code when the configured backend
    failed and this outcome comes from the fallback; None when it answered itself.
    """

    scores: Mapping[str, float]
    flagged: tuple[str, ...]
    backend: str
    degraded: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.scores, MappingProxyType):
            object.__setattr__(self, "scores", MappingProxyType(dict(self.scores)))

    @property
    def checked(self) -> bool:
        """False when the text was let through without any backend looking at it."""
        return self.backend != "none"

    @classmethod
    def unchecked(cls, cause: str) -> ModerationOutcome:
        """The outcome of failing open: no scores, nothing flagged."""
        return cls(MappingProxyType({}), (), "none", cause)


class ModerationUnavailable(DependencyError):
    """The moderation backend could not answer. `cause` is one of `CAUSES`.

    Never carries the text, the provider's message or the key: only the cause code.
    """

    def __init__(self, cause: str) -> None:
        super().__init__(f"content moderation is unavailable ({cause})")
        self.cause = cause


@runtime_checkable
class ModerationBackend(Protocol):
    """Scores texts for the moderation categories (`guardstream.detectors.moderation`)."""

    name: str

    async def moderate(self, texts: Sequence[str]) -> list[ModerationOutcome]:
        """One outcome per text, in order. Raises `ModerationUnavailable` on failure."""
        ...

    async def aclose(self) -> None:
        """Release connections; the backend is not used afterwards."""
        ...
