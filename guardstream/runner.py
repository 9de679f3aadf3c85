"""Runs one stage on one envelope and says where the outcome goes.

The Faust agents and `guardstream scan` both call `step()`, so a request takes the same
decisions on a broker as in one process. A stage that raises does not take the worker
down: the request ends in an `error` result with reason `stage_error`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from guardstream.agents.base import Decision, Stage, Verdict
from guardstream.audit import Auditor
from guardstream.models import AuditEvent, Envelope, Result, Status
from guardstream.telemetry import (
    Metrics,
    extract_context,
    forward_trace_headers,
    inject_headers,
    spans_recorded,
    stage_span,
)

__all__ = ["Outcome", "finish", "step"]

log = logging.getLogger("guardstream.runner")


@dataclass(frozen=True, slots=True)
class Outcome:
    """Exactly one of `forward` (to the next stage) and `result` (terminal) is set.

    `headers` carry this stage's trace context to whatever consumes the outcome.
    """

    forward: Envelope | None
    result: Result | None
    audit: tuple[AuditEvent, ...]
    headers: tuple[tuple[str, bytes], ...] = ()


async def step(stage: Stage, envelope: Envelope, *, is_last: bool, auditor: Auditor,
               trace_headers: Any = None, metrics: Metrics | None = None) -> Outcome:
    """Run `stage` on `envelope`: the outcome, its audit events and the trace headers.

    `trace_headers` are the incoming record's headers, whose trace context is the stage
    span's parent; None in process, where the current context is.
    """
    if not spans_recorded():
        verdict, elapsed_ms = await _decide(stage, envelope)
        headers = forward_trace_headers(trace_headers)
    else:
        parent = extract_context(trace_headers) if trace_headers is not None else None
        with stage_span(stage.name, envelope.request_id, parent) as span:
            verdict, elapsed_ms = await _decide(stage, envelope)
            span.set_attribute("guardstream.decision", verdict.decision.value)
            if verdict.reason:
                span.set_attribute("guardstream.reason", verdict.reason)
            span.set_attribute("guardstream.findings", len(verdict.findings))
            headers = tuple(inject_headers())
    if metrics is not None:
        metrics.record_stage(stage.name, verdict.decision.value, verdict.reason, elapsed_ms)
    updated = verdict.envelope.replace(
        findings=envelope.findings + verdict.findings,
        stages={**verdict.envelope.stages, stage.name: round(elapsed_ms, 3)},
    )
    events = [auditor.stage_event(stage.name, updated, decision=verdict.decision.value,
                                  reason=verdict.reason, latency_ms=elapsed_ms,
                                  findings=verdict.findings)]
    if verdict.decision is Decision.PASS and not is_last:
        return Outcome(forward=updated, result=None, audit=tuple(events), headers=headers)
    result = finish(updated, verdict, stage.name)
    events.append(auditor.response_event(updated, result))
    if metrics is not None and result.usage is not None:
        metrics.record_usage(result.usage.input_tokens, result.usage.output_tokens,
                             result.usage.cost_usd, updated.request.model)
    return Outcome(forward=None, result=result, audit=tuple(events), headers=headers)


async def _decide(stage: Stage, envelope: Envelope) -> tuple[Verdict, float]:
    started = time.perf_counter()
    try:
        verdict = await stage.process(envelope)
    except Exception as exc:
        # Never the exception text: it may quote the request.
        log.exception("stage %s raised %s", stage.name, type(exc).__name__,
                      extra={"request_id": envelope.request_id, "stage": stage.name})
        verdict = Verdict.error(envelope, "stage_error",
                                f"the {stage.name} stage failed ({type(exc).__name__})")
    return verdict, (time.perf_counter() - started) * 1000


def finish(envelope: Envelope, verdict: Verdict, stage_name: str) -> Result:
    """The terminal result for an envelope after `stage_name` decided `verdict`."""
    if verdict.decision is Decision.PASS:
        return Result(
            request_id=envelope.request_id,
            status=Status.OK,
            messages=envelope.request.messages,
            output=envelope.output,
            findings=envelope.findings,
            usage=envelope.usage,
            stages=envelope.stages,
        )
    # Blocked and failed requests never echo messages: nothing was sent to the model, and
    # the text may not have been redacted yet.
    return Result(
        request_id=envelope.request_id,
        status=Status.BLOCKED if verdict.decision is Decision.BLOCK else Status.ERROR,
        blocked_by=stage_name,
        reason=verdict.reason,
        detail=verdict.detail,
        retry_after_seconds=verdict.retry_after_seconds,
        findings=envelope.findings,
        usage=envelope.usage,
        stages=envelope.stages,
    )
