"""Builds audit events: metadata only, user ids as keyed HMACs, never content."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter

from guardstream.models import AuditEvent, Envelope, Finding, Result
from guardstream.settings import Settings

__all__ = ["Auditor"]


class Auditor:
    def __init__(self, settings: Settings) -> None:
        # Without a configured key (development only; production refuses to start without
        # one) a per-process key keeps hashes unlinkable to guesses, at the cost of not
        # matching across processes.
        key = settings.audit_hmac_key or b"guardstream-development-audit-key"
        # Keyed once: each hash copies the keyed state instead of re-deriving it.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def user_hash(self, user_id: str) -> str:
        """HMAC-SHA256 of the user id under the audit key, first 24 hex digits."""
        mac = self._keyed.copy()
        mac.update(user_id.encode())
        return mac.hexdigest()[:24]

    def stage_event(self, stage: str, envelope: Envelope, *, decision: str,
                    reason: str | None, latency_ms: float,
                    findings: tuple[Finding, ...]) -> AuditEvent:
        event = {"pass": "decision", "block": "block", "error": "error"}.get(decision, decision)
        request = envelope.request
        return AuditEvent(
            event=event,
            request_id=request.request_id,
            stage=stage,
            ts_ms=time.time() * 1000,
            decision=decision,
            reason=reason,
            latency_ms=round(latency_ms, 3),
            user_hash=self.user_hash(request.user_id) if request.user_id else None,
            tier=request.tier,
            model=request.model,
            message_count=len(request.messages),
            input_tokens=envelope.input_tokens,
            finding_counts=dict(Counter(f.type for f in findings)),
        )

    def response_event(self, envelope: Envelope, result: Result) -> AuditEvent:
        usage = result.usage
        return AuditEvent(
            event="response",
            request_id=result.request_id,
            stage="output",
            ts_ms=time.time() * 1000,
            decision=result.status.value,
            reason=result.reason,
            latency_ms=round(sum(result.stages.values()), 3),
            user_hash=(self.user_hash(envelope.request.user_id)
                       if envelope.request.user_id else None),
            tier=envelope.request.tier,
            model=envelope.request.model,
            message_count=len(envelope.request.messages),
            input_tokens=usage.input_tokens if usage else envelope.input_tokens,
            output_tokens=usage.output_tokens if usage else None,
            cost_usd=usage.cost_usd if usage else None,
            finding_counts=dict(Counter(f.type for f in result.findings)),
        )

    def dead_letter_event(self, stage: str, request_id: str | None, reason: str) -> AuditEvent:
        return AuditEvent(event="dead_letter", request_id=request_id, stage=stage,
                          ts_ms=time.time() * 1000, decision="error", reason=reason)
