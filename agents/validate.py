"""Stage validate: structure and size (Unicode checks land with their issue)."""

from __future__ import annotations

from guardstream.agents.base import Stage, Verdict
from guardstream.models import Envelope

__all__ = ["ValidateStage"]

ROLES = frozenset({"system", "user", "assistant"})


class ValidateStage(Stage):
    name = "validate"

    async def process(self, envelope: Envelope) -> Verdict:
        request = envelope.request
        if request.problems:
            problem = request.problems[0]
            return Verdict.blocked(envelope, problem.reason, problem.detail)
        for index, message in enumerate(request.messages):
            if message.role not in ROLES:
                return Verdict.blocked(envelope, "invalid_role",
                                       f"messages[{index}].role must be one of "
                                       "system, user, assistant")
        return Verdict.passed(envelope)
