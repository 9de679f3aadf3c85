"""Stage moderate (pass-through until its issue lands)."""

from __future__ import annotations

from guardstream.agents.base import Stage, Verdict
from guardstream.models import Envelope

__all__ = ["ModerateStage"]


class ModerateStage(Stage):
    name = "moderate"

    async def process(self, envelope: Envelope) -> Verdict:
        return Verdict.passed(envelope)
