"""Every topic name, declared once, from the settings' prefix.

| topic                        | key        | value                         |
|------------------------------|------------|-------------------------------|
| `<prefix>.requests`          | request_id | request JSON (ingress)        |
| `<prefix>.stage.<stage>`     | request_id | envelope into `<stage>`       |
| `<prefix>.results`           | request_id | result JSON (egress)          |
| `<prefix>.audit`             | request_id | audit event JSON              |
| `<prefix>.dlq`               | source key | dead letter JSON              |

The first stage consumes the ingress topic; every other stage consumes its own
`stage.<stage>` topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from guardstream.agents import STAGE_ORDER

__all__ = ["TopicNames"]


@dataclass(frozen=True, slots=True)
class TopicNames:
    prefix: str = "guardstream"

    @property
    def requests(self) -> str:
        return f"{self.prefix}.requests"

    @property
    def results(self) -> str:
        return f"{self.prefix}.results"

    @property
    def audit(self) -> str:
        return f"{self.prefix}.audit"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq"

    def stage(self, name: str) -> str:
        return f"{self.prefix}.stage.{name}"

    def input_of(self, stage: str) -> str:
        """The topic `stage` consumes."""
        return self.requests if stage == STAGE_ORDER[0] else self.stage(stage)

    def output_of(self, stage: str) -> str | None:
        """The topic a passing envelope goes to after `stage`; None after the last stage."""
        index = STAGE_ORDER.index(stage)
        return self.stage(STAGE_ORDER[index + 1]) if index + 1 < len(STAGE_ORDER) else None

    def all(self) -> list[str]:
        return [self.requests, *(self.stage(s) for s in STAGE_ORDER[1:]), self.results,
                self.audit, self.dlq]
