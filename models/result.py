"""The result JSON on `guardstream.results`: exactly one per request with a usable id."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from guardstream.models.finding import Finding
from guardstream.models.request import ChatMessage
from guardstream.models.usage import Usage

__all__ = ["Result", "Status"]


class Status(StrEnum):
    OK = "ok"
    BLOCKED = "blocked"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Result:
    request_id: str | None
    status: Status
    blocked_by: str | None = None
    reason: str | None = None
    detail: str | None = None
    retry_after_seconds: float | None = None
    messages: tuple[ChatMessage, ...] = ()
    output: str | None = None
    findings: tuple[Finding, ...] = ()
    usage: Usage | None = None
    stages: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status.value,
            "blocked_by": self.blocked_by,
            "reason": self.reason,
            "detail": self.detail,
            "retry_after_seconds": self.retry_after_seconds,
            "messages": [m.to_dict() for m in self.messages],
            "output": self.output,
            "findings": [f.to_dict() for f in self.findings],
            "usage": self.usage.to_dict() if self.usage else None,
            "stages": {k: round(v, 3) for k, v in self.stages.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        usage = data.get("usage")
        return cls(
            request_id=data.get("request_id"),
            status=Status(data["status"]),
            blocked_by=data.get("blocked_by"),
            reason=data.get("reason"),
            detail=data.get("detail"),
            retry_after_seconds=data.get("retry_after_seconds"),
            messages=tuple(ChatMessage(str(m["role"]), str(m["content"]))
                           for m in data.get("messages") or ()),
            output=data.get("output"),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings") or ()),
            usage=Usage.from_dict(usage) if usage else None,
            stages={str(k): float(v) for k, v in (data.get("stages") or {}).items()},
        )
