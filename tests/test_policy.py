"""The policy file: defaults, overrides, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardstream.errors import PolicyError
from guardstream.policy import load_policy, parse_policy


def test_packaged_default_has_the_documented_tiers() -> None:
    policy = load_policy()
    assert {name: (t.tokens_per_minute, t.requests_per_minute, t.max_input_tokens)
            for name, t in policy.tiers.items()} == {
        "free": (10_000, 10, 4_000), "pro": (100_000, 60, 32_000),
        "enterprise": (500_000, 300, 128_000)}
    assert policy.default_tier == "free"


def test_user_overrides_replace_tier_values() -> None:
    policy = parse_policy({
        "tiers": {"free": {"tokens_per_minute": 10, "requests_per_minute": 1,
                           "max_input_tokens": 5},
                  "pro": {"tokens_per_minute": 100, "requests_per_minute": 6,
                          "max_input_tokens": 50}},
        "users": {"alice": {"tier": "pro", "requests_per_minute": 99}},
    })
    tier, limits = policy.limits_for("alice", "free")
    assert tier == "pro"
    assert (limits.tokens_per_minute, limits.requests_per_minute) == (100, 99)
    assert policy.limits_for("bob", "nonexistent")[0] == "free"
    assert policy.limits_for("bob", "pro")[0] == "pro"


@pytest.mark.parametrize(("data", "names"), [
    ({"tiers": {"free": {"tokens_per_minute": 1, "requests_per_minute": 1,
                         "max_input_tokens": 1, "burst": 3}}}, "tiers.free.burst"),
    ({"tiers": {"free": {"tokens_per_minute": -1, "requests_per_minute": 1,
                         "max_input_tokens": 1}}}, "tiers.free.tokens_per_minute"),
    ({"tiers": {}, "default_tier": "free"}, "default_tier"),
    ({"tiers": {"free": {"tokens_per_minute": 1, "requests_per_minute": 1,
                         "max_input_tokens": 1}},
      "stages": {"redact": {"threshhold": 0.3}}}, "stages.redact.threshhold"),
    ({"tiers": {"free": {"tokens_per_minute": 1, "requests_per_minute": 1,
                         "max_input_tokens": 1}},
      "stages": {"ratelimit": {"on_redis_error": "shrug"}}}, "stages.ratelimit.on_redis_error"),
])
def test_invalid_policies_name_the_bad_key(data: dict[str, object], names: str) -> None:
    with pytest.raises(PolicyError, match=names.replace(".", r"\.")):
        parse_policy(data)


def test_unreadable_and_malformed_files_are_policy_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers: [unclosed")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
