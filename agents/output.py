"""Stage output: the model's answer is untrusted — filter it, validate it, never execute it.

Order, and why:
1. Filters and moderation run on the raw answer (`envelope.output`, set by the llm stage;
   None when the llm stage did not run, e.g. `scan --stages redact,output`, and then the
   envelope passes unchanged). Each class of leak is redacted to a typed placeholder or
   blocks the answer, per `stages.output`; moderation uses the moderate stage's backend and
   blocking categories, so one content policy covers the question and the answer.
2. Reversible pseudonymization: the redact stage's placeholders are restored from the
   request's vault entry AFTER filtering (restored values are the user's own and must not
   be flagged again), and the entry is deleted whatever the outcome.
3. Structured output (`response_format` json_object / json_schema) is validated on the
   final text, the one the client receives: an invalid answer is an `error` result with
   reason `invalid_structured_output` and a detail that names the JSON path, never content.
   `structured_reask` is not implemented: a re-ask means calling the model again, which is
   the llm stage's job (its retries, budget and breaker), not this stage's.

Blocked reasons: `system_prompt_leak`, `connection_string`, `output_secret`,
`internal_url`, `private_ip`, `file_path`, `output_pii`, `content_policy`. Errors:
`invalid_structured_output`, `invalid_response_format`, `moderation_unavailable`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING

from guardstream.agents.base import Stage, Verdict
from guardstream.batching import Batcher
from guardstream.detectors.pii import PiiEngine, PiiSpan
from guardstream.detectors.pii.policy import build_pii_engine
from guardstream.models import Envelope, Finding
from guardstream.moderation import (
    Assessment,
    ModerationBackend,
    ModerationUnavailable,
    assess,
    blocking_categories,
    build_backend,
)
from guardstream.output import (
    CATEGORY_REASONS,
    FilterOutcome,
    OutputFilter,
    check_structured,
    drop_vault,
    requested_schema,
    restore_placeholders,
    take_vault,
)

if TYPE_CHECKING:
    from guardstream.resources import Resources

__all__ = ["PII_ENGINE_KEY", "OutputStage"]

log = logging.getLogger("guardstream.output")

#: The `Resources.shared` key of the PII engine, the same one the redact stage uses.
PII_ENGINE_KEY = "pii_engine"

_DETAILS: dict[str, str] = {
    "system_prompt_leak": "the answer repeats the system prompt",
    "connection_string": "the answer contains a connection string with credentials",
    "output_secret": "the answer contains a secret or API key",
    "internal_url": "the answer contains an internal URL or host name",
    "private_ip": "the answer contains a private IP address",
    "file_path": "the answer contains a file system path",
    "output_pii": "the answer contains personal data",
}


class OutputStage(Stage):
    name = "output"

    def __init__(self, resources: Resources) -> None:
        super().__init__(resources)
        self._config = self.policy.stages.output
        self._block = blocking_categories(self.policy.stages.moderate)
        self._filter: OutputFilter | None = None
        self._pii_finder: Batcher[str, list[PiiSpan]] | None = None
        self._backend: ModerationBackend | None = None

    async def start(self) -> None:
        if self._config.enabled:
            await self._ensure_filter()
            if self._config.moderation != "off":
                await self._ensure_backend()

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()
            self._backend = None

    async def _ensure_filter(self) -> OutputFilter:
        if self._filter is None:
            engine: PiiEngine | None = None
            if OutputFilter(self._config).needs_pii_engine:
                redact = self.policy.stages.redact
                engine = await self.resources.run_cpu(
                    self.resources.shared, PII_ENGINE_KEY,
                    lambda: build_pii_engine(redact))
            self._filter = OutputFilter(self._config, engine)
            if engine is not None:
                # Answers of requests in flight together share NER batches (see redact).
                self._pii_finder = Batcher(engine.analyze_many, self.resources.run_cpu,
                                           max_items=max(1, self.settings.agent_concurrency))
        return self._filter

    async def _ensure_backend(self) -> ModerationBackend:
        if self._backend is None:
            # The local model loads in about a second: off the event loop.
            self._backend = await self.resources.run_cpu(build_backend, self.resources)
        return self._backend

    async def process(self, envelope: Envelope) -> Verdict:
        text = envelope.output
        if text is None:
            await self._discard_vault(envelope)
            return Verdict.passed(envelope)
        findings: list[Finding] = []
        if self._config.enabled:
            try:
                outcome, assessment = await self._inspect(envelope, text)
            except ModerationUnavailable as exc:
                await self._discard_vault(envelope)
                return Verdict.error(envelope.replace(output=None), "moderation_unavailable",
                                     f"content moderation of the answer is unavailable "
                                     f"({exc.cause}) and the policy fails closed")
            findings += [Finding(stage=self.name, type=f.span.type, action=f.action,
                                 score=f.span.score, start=f.span.start, end=f.span.end,
                                 layer=f.span.layer) for f in outcome.flagged]
            if assessment is not None:
                findings += assessment.findings
            blocked = self._blocked(envelope, outcome, assessment, tuple(findings))
            if blocked is not None:
                await self._discard_vault(envelope)
                return blocked
            text = outcome.text
        structured = requested_schema(envelope.request.response_format) is not None
        if envelope.vault:
            text, vault_finding = await self._restore(envelope, text, json_escape=structured)
            if vault_finding is not None:
                findings.append(vault_finding)
        if structured:
            problem = await self.resources.run_cpu(check_structured, text,
                                                   envelope.request.response_format)
            if problem is not None:
                return Verdict.error(envelope.replace(output=None), problem.reason,
                                     problem.detail, findings=tuple(findings))
        return Verdict.passed(envelope.replace(output=text), tuple(findings))

    async def _inspect(self, envelope: Envelope, text: str
                       ) -> tuple[FilterOutcome, Assessment | None]:
        """Filters (thread pool) and moderation, concurrently."""
        output_filter = await self._ensure_filter()
        messages = envelope.request.messages
        run = functools.partial(
            output_filter.run, text, canary=envelope.canary,
            system_prompts=[m.content for m in messages if m.role == "system"],
            user_texts=[m.content for m in messages if m.role == "user"])
        filtering = self._filtered(run, text)
        if self._config.moderation == "off" or not text.strip():
            return await filtering, None
        backend = await self._ensure_backend()
        outcome, outcomes = await asyncio.gather(filtering, backend.moderate([text]))
        assessment = assess(outcomes, [None], stage=self.name, block=self._block,
                            configured_backend=self.policy.stages.moderate.backend)
        return outcome, assessment

    async def _filtered(self, run: functools.partial[FilterOutcome],
                        text: str) -> FilterOutcome:
        finder = self._pii_finder
        pii = (await finder.submit([text]))[0] if finder is not None else None
        return await self.resources.run_cpu(functools.partial(run, pii=pii))

    def _blocked(self, envelope: Envelope, outcome: FilterOutcome,
                 assessment: Assessment | None, findings: tuple[Finding, ...]
                 ) -> Verdict | None:
        withheld = envelope.replace(output=None)  # the leak goes no further, not even inside
        if outcome.blocked:
            reasons = [CATEGORY_REASONS[c] for c in outcome.blocking]
            detail = _DETAILS[reasons[0]]
            if len(reasons) > 1:
                detail += f" (also: {', '.join(reasons[1:])})"
            score = max((f.span.score for f in outcome.flagged if f.action == "blocked"),
                        default=None)
            return Verdict.blocked(withheld, reasons[0], detail, findings=findings,
                                   score=score)
        if assessment is not None and assessment.blocked:
            return Verdict.blocked(withheld, "content_policy",
                                   assessment.detail().replace("content policy violation",
                                                               "the answer violates the "
                                                               "content policy"),
                                   findings=findings, score=assessment.score)
        return None

    async def _restore(self, envelope: Envelope, text: str, *, json_escape: bool
                       ) -> tuple[str, Finding | None]:
        """The answer with the request's own values back; the vault entry is gone after."""
        try:
            mapping = await take_vault(self.resources.redis(), envelope.request_id)
        except Exception as exc:  # Redis down: placeholders stay, nothing leaks
            log.warning("vault read failed for request %s (%s)", envelope.request_id,
                        type(exc).__name__)
            return text, Finding(stage=self.name, type="vault_unavailable", action="skipped",
                                 score=0.0)
        restored, _ = restore_placeholders(text, mapping, json_escape=json_escape)
        return restored, None

    async def _discard_vault(self, envelope: Envelope) -> None:
        """The request ends here without a restore: its values must not outlive it."""
        if not envelope.vault:
            return
        try:
            await drop_vault(self.resources.redis(), envelope.request_id)
        except Exception as exc:  # the TTL removes it anyway
            log.warning("vault delete failed for request %s (%s)", envelope.request_id,
                        type(exc).__name__)
