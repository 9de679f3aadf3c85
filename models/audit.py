"""Audit events on `guardstream.audit`: metadata only, never message content or values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["AuditEvent"]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One thing that happened to a request in one stage.

    `event` is one of request, decision, block, error, response, dead_letter.
    `user_hash` is a keyed HMAC of the user id: a plain hash could be reversed by guessing.
    `finding_counts` maps finding types to how many were seen; the values themselves never
    leave the stage that saw them.
    """

    event: str
    request_id: str | None
    stage: str
    ts_ms: float
    decision: str | None = None
    reason: str | None = None
    latency_ms: float | None = None
    user_hash: str | None = None
    tier: str | None = None
    model: str | None = None
    message_count: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    finding_counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.event, "request_id": self.request_id,
                               "stage": self.stage, "ts_ms": self.ts_ms}
        for key in ("decision", "reason", "latency_ms", "user_hash", "tier", "model",
                    "message_count", "input_tokens", "output_tokens", "cost_usd"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.finding_counts:
            out["finding_counts"] = self.finding_counts
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditEvent:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)
