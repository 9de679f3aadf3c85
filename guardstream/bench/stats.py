"""The report's arithmetic: percentiles, latency summaries, per-stage times, targets.

Pure functions over plain numbers and result dicts, so they are tested without a broker.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["TARGETS", "check_targets", "percentile", "ratio", "spread", "stage_breakdown",
           "summarize"]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(values_ms: Sequence[float]) -> dict[str, float]:
    if not values_ms:
        return {"count": 0}
    return {"count": len(values_ms), "mean": round(statistics.fmean(values_ms), 3),
            "p50": round(percentile(values_ms, 50), 3),
            "p95": round(percentile(values_ms, 95), 3),
            "p99": round(percentile(values_ms, 99), 3),
            "max": round(max(values_ms), 3)}


def stage_breakdown(results: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per stage: how many results it timed, mean/p50/p95 ms (from results' `stages`)."""
    times: dict[str, list[float]] = {}
    for result in results:
        for stage, ms in (result.get("stages") or {}).items():
            if isinstance(ms, int | float):
                times.setdefault(stage, []).append(float(ms))
    return {stage: {"count": len(v), "mean": round(statistics.fmean(v), 3),
                    "p50": round(percentile(v, 50), 3), "p95": round(percentile(v, 95), 3)}
            for stage, v in times.items()}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def spread(values: Sequence[float]) -> dict[str, float]:
    """min/median/max of repeated measurements."""
    if not values:
        return {}
    return {"min": round(min(values), 4), "median": round(statistics.median(values), 4),
            "max": round(max(values), 4), "runs": len(values)}


# name -> (description, comparison, limit)
TARGETS: dict[str, tuple[str, str, float]] = {
    "gateway_cpu_ms_per_request": ("CPU per request summed over stage workers (ms)", "<=", 10.0),
    "faust_hop_vs_raw_hop": ("CPU of a Faust hop / CPU of a raw aiokafka hop", "<=", 4.0),
    "pipeline_vs_inprocess_throughput": ("pipeline throughput / in-process chain's", ">=", 0.5),
    "max_worker_rss_mb": ("largest stage worker RSS (MB)", "<", 400.0),
    "up_total_rss_mb": ("guardstream up in total, RSS (MB)", "<", 2048.0),
    "p99_over_p50": ("p99 / p50 end to end at a fixed rate", "<", 10.0),
}


def check_targets(measured: Mapping[str, float | None]) -> dict[str, dict[str, Any]]:
    """Each target with its measured value and met (True/False, None when not measured)."""
    out: dict[str, dict[str, Any]] = {}
    for name, (text, op, limit) in TARGETS.items():
        value = measured.get(name)
        met: bool | None
        if value is None or (isinstance(value, float) and math.isnan(value)):
            met = None
        elif op == "<=":
            met = value <= limit
        elif op == "<":
            met = value < limit
        else:
            met = value >= limit
        out[name] = {"target": f"{op} {limit:g}", "what": text,
                     "value": None if value is None else round(value, 3), "met": met}
    return out
