"""What a stage noticed about a request, without the sensitive value itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Finding"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation by one stage: a type, what was done about it, and a confidence.

    `message` and `start`/`end` locate the finding (index into `messages`, character offsets
    in the text the stage saw) so a reviewer can tell *where* without being told *what*.
    """

    stage: str
    type: str
    action: str
    score: float = 1.0
    message: int | None = None
    start: int | None = None
    end: int | None = None
    layer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "stage": self.stage,
            "type": self.type,
            "action": self.action,
            "score": round(self.score, 4),
        }
        for key in ("message", "start", "end", "layer"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            stage=str(data["stage"]),
            type=str(data["type"]),
            action=str(data["action"]),
            score=float(data.get("score", 1.0)),
            message=data.get("message"),
            start=data.get("start"),
            end=data.get("end"),
            layer=data.get("layer"),
        )
