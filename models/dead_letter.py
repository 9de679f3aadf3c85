"""What could not be decoded or processed, kept whole for a person to look at."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

__all__ = ["DeadLetter"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    error: str
    stage: str
    topic: str | None
    partition: int | None
    offset: int | None
    key: bytes | None
    value: bytes | None
    ts_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "stage": self.stage,
            "source": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "key_b64": base64.b64encode(self.key).decode() if self.key is not None else None,
            "value_b64": (base64.b64encode(self.value).decode()
                          if self.value is not None else None),
            "ts_ms": self.ts_ms,
        }
