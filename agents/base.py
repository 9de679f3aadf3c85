"""The stage contract: `process(envelope) -> Verdict`, runnable without Kafka.

A stage never raises for a bad request: it returns a `Verdict` that passes the (possibly
rewritten) envelope on, blocks it with a stable reason, or ends it with an error. The runner
adds the stage's findings and timing and decides where the envelope goes next.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from guardstream.models import Envelope, Finding

if TYPE_CHECKING:
    from guardstream.resources import Resources

__all__ = ["Decision", "Stage", "Verdict"]


class Decision(StrEnum):
    PASS = "pass"  # noqa: S105 - a decision, not a password
    BLOCK = "block"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one stage decided about one request.

    `envelope` carries the stage's changes (sanitized messages, model output, usage) but not
    its findings: those are in `findings` and the runner appends them.
    """

    decision: Decision
    envelope: Envelope
    reason: str | None = None
    detail: str | None = None
    findings: tuple[Finding, ...] = ()
    score: float | None = None
    retry_after_seconds: float | None = None

    @classmethod
    def passed(cls, envelope: Envelope, findings: tuple[Finding, ...] = (),
               score: float | None = None) -> Verdict:
        return cls(Decision.PASS, envelope, findings=findings, score=score)

    @classmethod
    def blocked(cls, envelope: Envelope, reason: str, detail: str, *,
                findings: tuple[Finding, ...] = (), score: float | None = None,
                retry_after_seconds: float | None = None) -> Verdict:
        return cls(Decision.BLOCK, envelope, reason, detail, findings, score,
                   retry_after_seconds)

    @classmethod
    def error(cls, envelope: Envelope, reason: str, detail: str, *,
              findings: tuple[Finding, ...] = (),
              retry_after_seconds: float | None = None) -> Verdict:
        return cls(Decision.ERROR, envelope, reason, detail, findings,
                   retry_after_seconds=retry_after_seconds)


class Stage(ABC):
    """One defense stage. Heavy objects are built in `start()`, once per worker."""

    name: ClassVar[str]

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.settings = resources.settings
        self.policy = resources.settings.policy

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Build models, clients and scripts; called once before the first `process`."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what `start` built."""

    @abstractmethod
    async def process(self, envelope: Envelope) -> Verdict:
        """Decide about one request. Must not raise for anything a request can contain."""
