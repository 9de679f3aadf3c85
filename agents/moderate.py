"""Stage moderate: content policy on the request's messages.

Which roles are moderated, which backend scores them (`local` offline model or the `openai`
moderation endpoint with a fallback), which categories block and at what thresholds all
come from the policy (`stages.moderate`). Profanity alone is reported (`flagged`) but does
not block unless the policy lists it in `block_categories`: it is a weak signal on its own
and swearing users are not an attack.

Results: `blocked_by: moderate`, `reason: content_policy`, `detail` naming the categories;
one finding per flagged category per message (type = category, action `blocked` or
`flagged`, score, message index). When the online backend fails and the policy says
`fail_closed`, the request ends with an `error` result, reason `moderation_unavailable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from guardstream.agents.base import Stage, Verdict
from guardstream.models import Envelope
from guardstream.moderation import (
    ModerationBackend,
    ModerationUnavailable,
    assess,
    blocking_categories,
    build_backend,
)

if TYPE_CHECKING:
    from guardstream.resources import Resources

__all__ = ["ModerateStage"]


class ModerateStage(Stage):
    name = "moderate"

    def __init__(self, resources: Resources) -> None:
        super().__init__(resources)
        self._config = self.policy.stages.moderate
        self._block = blocking_categories(self._config)
        self._backend: ModerationBackend | None = None

    async def start(self) -> None:
        if self._config.enabled:
            await self._ensure_backend()

    async def _ensure_backend(self) -> ModerationBackend:
        if self._backend is None:
            # Loading the local model takes about a second: off the event loop.
            self._backend = await self.resources.run_cpu(build_backend, self.resources)
        return self._backend

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()
            self._backend = None

    async def process(self, envelope: Envelope) -> Verdict:
        config = self._config
        if not config.enabled:
            return Verdict.passed(envelope)
        messages = envelope.request.messages
        indices = [i for i, m in enumerate(messages)
                   if m.role in config.roles and m.content.strip()]
        if not indices:
            return Verdict.passed(envelope)
        backend = await self._ensure_backend()
        try:
            outcomes = await backend.moderate([messages[i].content for i in indices])
        except ModerationUnavailable as exc:
            return Verdict.error(envelope, "moderation_unavailable",
                                 f"content moderation is unavailable ({exc.cause}) and the "
                                 "policy fails closed")
        assessment = assess(outcomes, indices, stage=self.name, block=self._block,
                            configured_backend=config.backend)
        if assessment.blocked:
            return Verdict.blocked(envelope, "content_policy", assessment.detail(),
                                   findings=assessment.findings, score=assessment.score)
        return Verdict.passed(envelope, assessment.findings)
