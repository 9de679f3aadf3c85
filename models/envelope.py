"""The internal envelope that travels between stages on `guardstream.stage.<stage>` topics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from guardstream.models.finding import Finding
from guardstream.models.request import ChatMessage, ChatRequest
from guardstream.models.usage import Usage

__all__ = ["Envelope"]


@dataclass(frozen=True, slots=True)
class Envelope:
    """The request as the stages have shaped it so far, plus what they noticed and spent.

    `request.messages` are always the *current* messages: validate sanitizes them and redact
    replaces PII, so every later stage and the model see the cleaned text.
    """

    request: ChatRequest
    received_ms: float
    findings: tuple[Finding, ...] = ()
    stages: dict[str, float] = field(default_factory=dict)
    input_tokens: int | None = None
    usage: Usage | None = None
    output: str | None = None
    canary: str | None = None
    vault: bool = False
    trace: dict[str, str] | None = None

    @property
    def request_id(self) -> str:
        return self.request.request_id

    def with_messages(self, messages: tuple[ChatMessage, ...]) -> Envelope:
        return dataclasses.replace(self, request=dataclasses.replace(self.request,
                                                                     messages=messages))

    def replace(self, **changes: Any) -> Envelope:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request": self.request.to_dict(),
            "received_ms": self.received_ms,
            "findings": [f.to_dict() for f in self.findings],
            "stages": self.stages,
        }
        if self.input_tokens is not None:
            out["input_tokens"] = self.input_tokens
        if self.usage is not None:
            out["usage"] = self.usage.to_dict()
        if self.output is not None:
            out["output"] = self.output
        if self.canary is not None:
            out["canary"] = self.canary
        if self.vault:
            out["vault"] = True
        if self.trace:
            out["trace"] = self.trace
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Envelope:
        usage = data.get("usage")
        return cls(
            request=ChatRequest.from_dict(data["request"]),
            received_ms=float(data.get("received_ms", 0.0)),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", ())),
            stages={str(k): float(v) for k, v in (data.get("stages") or {}).items()},
            input_tokens=data.get("input_tokens"),
            usage=Usage.from_dict(usage) if usage else None,
            output=data.get("output"),
            canary=data.get("canary"),
            vault=bool(data.get("vault", False)),
            trace=data.get("trace"),
        )
