"""Stage injection: catch prompt injection and jailbreaks before the model sees them.

The detector (`guardstream.detectors.injection`) layers normalized heuristics (with
decoding of base64/hex/rot13/leetspeak/homoglyph payloads), a small local classifier and
an optional similarity check against known attacks; the finding names the layer that
fired and the attack categories. Which roles are scanned comes from the policy (user by
default; add `assistant` or `system` when those carry retrieved or tool text).
"""

from __future__ import annotations

from guardstream.agents.base import Stage, Verdict
from guardstream.batching import Batcher
from guardstream.detectors.injection import InjectionDetector, InjectionScore
from guardstream.models import Envelope, Finding

__all__ = ["InjectionStage"]


class InjectionStage(Stage):
    name = "injection"

    async def start(self) -> None:
        policy = self.policy.stages.injection
        kwargs: dict[str, object] = {"heuristics": policy.heuristics,
                                     "classifier": policy.classifier,
                                     "similarity": policy.similarity}
        if policy.threshold is not None:
            kwargs["threshold"] = policy.threshold
        key = f"injection_detector:{sorted(kwargs.items())}"
        self.detector: InjectionDetector = await self.resources.run_cpu(
            self.resources.shared, key, lambda: InjectionDetector(**kwargs))  # type: ignore[arg-type]
        await self.resources.run_cpu(self.detector.warm_up)
        # Texts of the requests in flight go to the thread pool together: one hand-off
        # (~40-110 us of CPU) per batch instead of per request.
        self._scanner: Batcher[str, InjectionScore] = Batcher(
            self._scan_all, self.resources.run_cpu,
            max_items=max(1, self.settings.agent_concurrency))

    async def process(self, envelope: Envelope) -> Verdict:
        roles = self.policy.stages.injection.roles
        targets = [(i, m.content) for i, m in enumerate(envelope.request.messages)
                   if m.role in roles and m.content.strip()]
        if not targets:
            return Verdict.passed(envelope)
        scores = await self._scanner.submit([text for _, text in targets])
        findings: list[Finding] = []
        worst: InjectionScore | None = None
        for (index, _), score in zip(targets, scores, strict=True):
            if not self.detector.is_attack(score):
                continue
            if worst is None or score.score > worst.score:
                worst = score
            for category in score.categories or ("prompt_injection",):
                findings.append(Finding(stage=self.name, type=category, action="blocked",
                                        score=score.score, message=index, layer=score.layer))
        if worst is None:
            top = max(scores, key=lambda s: s.score)
            return Verdict.passed(envelope, score=top.score)
        kinds = ", ".join(sorted({f.type for f in findings}))
        return Verdict.blocked(
            envelope, "prompt_injection",
            f"prompt injection detected ({kinds}; layer {worst.layer}, "
            f"score {worst.score:.2f})",
            findings=tuple(findings), score=worst.score)

    def _scan_all(self, texts: list[str]) -> list[InjectionScore]:
        return [self.detector.scan(text) for text in texts]
