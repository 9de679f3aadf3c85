"""The policy: one validated YAML file, read once per process.

Tiers and per-user overrides decide who may spend what; `stages` holds one section per
stage, validated against that stage's section model. Unknown keys are errors that name the
key (`stages.redact.threshhold: Extra inputs are not permitted`).
"""

from __future__ import annotations

from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from guardstream.errors import PolicyError
from guardstream.policy.base import Section
from guardstream.policy.stages import (
    InjectionPolicy,
    LlmPolicy,
    ModelPrice,
    ModeratePolicy,
    OperatorPolicy,
    OutputPolicy,
    RateLimitPolicy,
    RedactPolicy,
    ValidatePolicy,
)
from guardstream.policy.tiers import IpLimits, TierLimits, UserOverride

__all__ = [
    "DEFAULT_POLICY_FILE",
    "InjectionPolicy",
    "IpLimits",
    "LlmPolicy",
    "ModelPrice",
    "ModeratePolicy",
    "OperatorPolicy",
    "OutputPolicy",
    "Policy",
    "RateLimitPolicy",
    "RedactPolicy",
    "StagePolicies",
    "TierLimits",
    "UserOverride",
    "ValidatePolicy",
    "load_policy",
]

DEFAULT_POLICY_FILE = "default_policy.yaml"


class StagePolicies(Section):
    ratelimit: RateLimitPolicy = Field(default_factory=RateLimitPolicy)
    validate_: ValidatePolicy = Field(default_factory=ValidatePolicy, alias="validate")
    redact: RedactPolicy = Field(default_factory=RedactPolicy)
    moderate: ModeratePolicy = Field(default_factory=ModeratePolicy)
    injection: InjectionPolicy = Field(default_factory=InjectionPolicy)
    llm: LlmPolicy = Field(default_factory=LlmPolicy)
    output: OutputPolicy = Field(default_factory=OutputPolicy)


class Policy(Section):
    version: int = 1
    default_tier: str = "free"
    tiers: dict[str, TierLimits]
    users: dict[str, UserOverride] = Field(default_factory=dict)
    ip: IpLimits = Field(default_factory=IpLimits)
    stages: StagePolicies = Field(default_factory=StagePolicies)

    @model_validator(mode="after")
    def _tiers_exist(self) -> Policy:
        if self.default_tier not in self.tiers:
            raise ValueError(f"default_tier {self.default_tier!r} is not in tiers")
        for user, override in self.users.items():
            if override.tier is not None and override.tier not in self.tiers:
                raise ValueError(f"users.{user}.tier {override.tier!r} is not in tiers")
        return self

    def limits_for(self, user_id: str, tier: str | None) -> tuple[str, TierLimits]:
        """The effective tier name and limits for a user: override > request tier > default."""
        override = self.users.get(user_id)
        name = (override.tier if override and override.tier else None) or tier
        if name not in self.tiers:
            name = self.default_tier
        limits = self.tiers[name]
        if override is not None:
            changes = {k: v for k, v in override.model_dump(exclude={"tier"}).items()
                       if v is not None}
            if changes:
                limits = limits.model_copy(update=changes)
        return name, limits

    @cached_property
    def fingerprint(self) -> str:
        import hashlib

        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate a policy file; the packaged default when `path` is None."""
    if path is None:
        text = resources.files("guardstream").joinpath(DEFAULT_POLICY_FILE).read_text()
        source = f"<packaged {DEFAULT_POLICY_FILE}>"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
        source = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from None
    return parse_policy(data, source=source)


def parse_policy(data: Any, *, source: str = "<policy>") -> Policy:
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the policy must be a mapping")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise PolicyError(f"{source}: {problems}") from None
