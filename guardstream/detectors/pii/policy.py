"""From the policy's `stages.redact` section to the engine's `PiiConfig`.

The redact stage (the request) and the output stage (the model's answer) share one
`PiiEngine` per process (`resources.shared("pii_engine", ...)`); whichever builds it first
must build the same engine, so both call this one function.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .engine import DEFAULT_ENTITIES, PiiConfig, PiiEngine
from .operators import OperatorSpec

if TYPE_CHECKING:
    from guardstream.policy import OperatorPolicy, RedactPolicy

__all__ = [
    "REDACTED_VALUE",
    "build_pii_engine",
    "operator_spec_from_policy",
    "pii_config_from_policy",
]

#: What the policy's `redact` operator kind leaves behind: the value and its type are
#: gone. The `<...>` shape keeps it recognisable as redacted on a second pass.
REDACTED_VALUE = "<REDACTED>"


def operator_spec_from_policy(operator: OperatorPolicy) -> OperatorSpec:
    """One policy operator as the engine's `OperatorSpec`.

    The policy offers `redact` (remove the value and its type); the engine has no such kind,
    so it becomes a `replace` with the fixed `<REDACTED>` text.
    """
    if operator.kind == "redact":
        return OperatorSpec("replace", MappingProxyType({"new_value": REDACTED_VALUE}))
    if operator.kind == "mask":
        params: dict[str, Any] = {
            "masking_char": operator.masking_char,
            "chars_to_mask": operator.chars_to_mask,
            "from_end": operator.from_end,
        }
        return OperatorSpec("mask", MappingProxyType(params))
    return OperatorSpec(operator.kind)


def pii_config_from_policy(redact: RedactPolicy) -> PiiConfig:
    """The engine configuration `stages.redact` describes (entities None = the defaults)."""
    operators = {name: operator_spec_from_policy(op) for name, op in redact.operators.items()}
    operators.setdefault("DEFAULT", OperatorSpec("replace"))
    return PiiConfig(
        entities=tuple(redact.entities) if redact.entities is not None else DEFAULT_ENTITIES,
        score_threshold=redact.score_threshold,
        language=redact.language,
        operators=MappingProxyType(operators),
        allow_list=tuple(redact.allow_list),
    )


def build_pii_engine(redact: RedactPolicy) -> PiiEngine:
    """The engine for `stages.redact`, warmed up (see `PiiEngine.warm_up`): a worker's."""
    engine = PiiEngine(pii_config_from_policy(redact))
    engine.warm_up()
    return engine
