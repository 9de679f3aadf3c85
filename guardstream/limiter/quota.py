"""Who is limited, and by how much: the identity (user or IP), its keys and its quota.

Requests from an anonymous user that carry `client_ip` are limited per IP with the
policy's `ip` limits, so anonymous callers do not share (and exhaust) one "anonymous"
bucket. Everyone else is limited per user with their tier's limits and overrides.

Identities are hashed into the Redis key names: user ids and IPs are personal data that
have no business in `MONITOR` or slowlog output, a hash has a bounded length, and it cannot
contain `{`/`}`, which would break the Redis Cluster hash tag that keeps one identity's
keys in one slot (a Lua script may only touch keys of one slot).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guardstream.policy import Policy

__all__ = ["Identity", "Quota", "is_anonymous", "quota_for"]


@dataclass(frozen=True, slots=True)
class Identity:
    kind: str  # "u" (user) or "ip"
    value: str

    def keys(self, prefix: str) -> tuple[str, str, str]:
        """(window log, window sums, daily spend) keys, all in one Cluster hash slot."""
        digest = hashlib.blake2b(self.value.encode("utf-8", "surrogatepass"),
                                 digest_size=12).hexdigest()
        base = f"{prefix}:{{{self.kind}:{digest}}}"
        return f"{base}:log", f"{base}:sum", f"{base}:spend"


@dataclass(frozen=True, slots=True)
class Quota:
    identity: Identity
    tier: str
    max_requests: int  # per window
    max_tokens: int  # per window
    max_input_tokens: int
    budget_usd: float | None


def _per_window(per_minute: int, window_seconds: int) -> int:
    return max(1, math.floor(per_minute * window_seconds / 60))


def is_anonymous(policy: Policy, user_id: str) -> bool:
    return user_id.strip().lower() in policy.ip.anonymous_user_ids


def quota_for(policy: Policy, *, user_id: str, tier: str | None,
              client_ip: str | None) -> Quota:
    """The identity and limits that apply to one request."""
    window = policy.stages.ratelimit.window_seconds
    tier_name, limits = policy.limits_for(user_id, tier)
    if client_ip and is_anonymous(policy, user_id):
        return Quota(identity=Identity("ip", client_ip.strip()), tier=tier_name,
                     max_requests=_per_window(policy.ip.requests_per_minute, window),
                     max_tokens=_per_window(policy.ip.tokens_per_minute, window),
                     max_input_tokens=limits.max_input_tokens, budget_usd=None)
    return Quota(identity=Identity("u", user_id), tier=tier_name,
                 max_requests=_per_window(limits.requests_per_minute, window),
                 max_tokens=_per_window(limits.tokens_per_minute, window),
                 max_input_tokens=limits.max_input_tokens,
                 budget_usd=limits.daily_budget_usd)
