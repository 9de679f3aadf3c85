"""Tiers, per-user overrides and per-IP limits: who may spend how much."""

from __future__ import annotations

from pydantic import Field

from guardstream.policy.base import Section

__all__ = ["IpLimits", "TierLimits", "UserOverride"]


class TierLimits(Section):
    tokens_per_minute: int = Field(gt=0)
    requests_per_minute: int = Field(gt=0)
    max_input_tokens: int = Field(gt=0)
    max_output_tokens: int = Field(default=1024, gt=0)
    daily_budget_usd: float | None = Field(default=None, gt=0)


class UserOverride(Section):
    """Anything set here replaces the user's tier value; `tier` pins the user's tier."""

    tier: str | None = None
    tokens_per_minute: int | None = Field(default=None, gt=0)
    requests_per_minute: int | None = Field(default=None, gt=0)
    max_input_tokens: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    daily_budget_usd: float | None = Field(default=None, gt=0)


class IpLimits(Section):
    """Limits for requests that carry `client_ip` and no authenticated user."""

    tokens_per_minute: int = Field(default=5_000, gt=0)
    requests_per_minute: int = Field(default=5, gt=0)
    anonymous_user_ids: tuple[str, ...] = ("", "anonymous", "anon", "guest")
