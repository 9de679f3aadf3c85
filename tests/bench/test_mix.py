"""The standard mix: deterministic, valid requests, the advertised shares and shapes."""

from __future__ import annotations

import pytest

from guardstream.bench.mix import KINDS, MIX_WEIGHTS, build_mix, mix_counts
from guardstream.models.request import ChatRequest


def test_same_seed_same_texts_other_ids() -> None:
    a = build_mix(200, seed=3, run_id="a")
    b = build_mix(200, seed=3, run_id="b")
    assert [r.body["messages"] for r in a] == [r.body["messages"] for r in b]
    assert {r.request_id for r in a}.isdisjoint({r.request_id for r in b})
    assert [r.body["messages"] for r in build_mix(200, seed=4)] != [r.body["messages"]
                                                                    for r in a]


def test_every_request_parses_without_problems() -> None:
    for item in build_mix(300, seed=1):
        request = ChatRequest.from_dict(item.body)
        assert not getattr(request, "problems", ()), item.kind
        assert request.request_id == item.request_id


def test_shares_follow_the_weights() -> None:
    counts = mix_counts(build_mix(4000, seed=11))
    assert set(counts) == set(KINDS)
    for kind, weight in MIX_WEIGHTS.items():
        assert counts[kind] / 4000 == pytest.approx(weight, abs=0.03)


@pytest.mark.parametrize("per_user", [1, 2, 5])
def test_requests_per_user_bounds_each_user(per_user: int) -> None:
    mix = build_mix(101, requests_per_user=per_user)
    users: dict[str, int] = {}
    for item in mix:
        users[item.body["user_id"]] = users.get(item.body["user_id"], 0) + 1
    assert max(users.values()) == per_user
    assert len({r.request_id for r in mix}) == 101


def test_kinds_have_their_shape() -> None:
    mix = build_mix(600, seed=5, long_chars=2500)
    by_kind = {k: [r for r in mix if r.kind == k] for k in KINDS}
    assert all(len(r.body["messages"][0]["content"]) > 2500 for r in by_kind["long"])
    assert all(len(r.body["messages"][0]["content"]) < 200 for r in by_kind["short"])
    assert all("@example.com" in r.body["messages"][0]["content"]
               or "card" in r.body["messages"][0]["content"] for r in by_kind["pii"])
    assert all(len(r.body["messages"]) == 4 for r in by_kind["multi"])
    assert {r.body["tier"] for r in mix} == {"free", "pro", "enterprise"}


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        build_mix(-1)
    with pytest.raises(ValueError):
        build_mix(5, requests_per_user=0)
