"""The defense stages, in pipeline order, and the registry that builds them by name.

Stage modules are imported on demand so that a worker for one stage never pays for the
models of another.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guardstream.agents.base import Stage
    from guardstream.resources import Resources

__all__ = ["STAGE_ORDER", "build_stage", "parse_stage_names", "stage_class"]

STAGE_ORDER: tuple[str, ...] = (
    "ratelimit", "validate", "redact", "moderate", "injection", "llm", "output",
)

_REGISTRY: dict[str, str] = {
    "ratelimit": "guardstream.agents.ratelimit:RateLimitStage",
    "validate": "guardstream.agents.validate:ValidateStage",
    "redact": "guardstream.agents.redact:RedactStage",
    "moderate": "guardstream.agents.moderate:ModerateStage",
    "injection": "guardstream.agents.injection:InjectionStage",
    "llm": "guardstream.agents.llm:LlmStage",
    "output": "guardstream.agents.output:OutputStage",
}


def stage_class(name: str) -> type[Stage]:
    try:
        module_name, _, attr = _REGISTRY[name].partition(":")
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGE_ORDER)}") from None
    cls: type[Stage] = getattr(import_module(module_name), attr)
    return cls


def build_stage(name: str, resources: Resources) -> Stage:
    return stage_class(name)(resources)


def parse_stage_names(values: list[str] | str) -> list[str]:
    """`a,b` or ["a", "b,c"] -> validated names, in pipeline order, without repeats."""
    raw = [values] if isinstance(values, str) else values
    names = {part.strip() for item in raw for part in item.split(",") if part.strip()}
    unknown = sorted(names - set(STAGE_ORDER))
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}; "
                         f"stages are {', '.join(STAGE_ORDER)}")
    if not names:
        raise ValueError("no stage given")
    return [name for name in STAGE_ORDER if name in names]
