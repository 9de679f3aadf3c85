"""The report's arithmetic against independent references (numpy, hand-made cases)."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

from guardstream.bench.stats import (
    TARGETS,
    check_targets,
    percentile,
    ratio,
    spread,
    stage_breakdown,
    summarize,
)


@pytest.mark.parametrize("size", [1, 2, 3, 10, 101, 1000])
@pytest.mark.parametrize("q", [0, 1, 50, 95, 99, 100])
def test_percentile_matches_numpy(size: int, q: float) -> None:
    rng = random.Random(size * 1000 + int(q))
    values = [rng.expovariate(1 / 50) for _ in range(size)]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_edges() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # input order does not matter


def test_summarize_orders_and_counts() -> None:
    values = [float(v) for v in range(1, 101)]
    s = summarize(values)
    assert s["count"] == 100
    assert s["p50"] <= s["p95"] <= s["p99"] <= s["max"] == 100.0
    assert s["mean"] == pytest.approx(50.5)
    assert summarize([]) == {"count": 0}


def test_stage_breakdown_uses_only_stages_present() -> None:
    results: list[dict[str, Any]] = [{"stages": {"ratelimit": 1.0, "redact": 10.0}},
               {"stages": {"ratelimit": 3.0}},
               {"stages": None}, {}]
    out = stage_breakdown(results)
    assert set(out) == {"ratelimit", "redact"}
    assert out["ratelimit"]["count"] == 2
    assert out["ratelimit"]["mean"] == pytest.approx(2.0)
    assert out["redact"]["p95"] == pytest.approx(10.0)


@pytest.mark.parametrize(("num", "den", "expected"), [
    (10.0, 4.0, 2.5), (1.0, 0.0, None), (None, 3.0, None), (3.0, None, None)])
def test_ratio(num: float | None, den: float | None, expected: float | None) -> None:
    assert ratio(num, den) == expected


def test_spread() -> None:
    assert spread([3.0, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "max": 3.0, "runs": 3}
    assert spread([]) == {}


@pytest.mark.parametrize(("name", "good", "bad"), [
    ("gateway_cpu_ms_per_request", 10.0, 10.01),
    ("faust_hop_vs_raw_hop", 3.9, 4.5),
    ("pipeline_vs_inprocess_throughput", 0.5, 0.49),
    ("max_worker_rss_mb", 399.0, 400.0),
    ("up_total_rss_mb", 2000.0, 2048.0),
    ("p99_over_p50", 9.99, 10.0),
])
def test_check_targets_boundaries(name: str, good: float, bad: float) -> None:
    assert check_targets({name: good})[name]["met"] is True
    assert check_targets({name: bad})[name]["met"] is False


def test_check_targets_unmeasured_is_none() -> None:
    out = check_targets({})
    assert set(out) == set(TARGETS)
    assert all(item["met"] is None and item["value"] is None for item in out.values())
