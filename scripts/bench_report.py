"""Render one or more `guardstream bench` JSON reports as the markdown of docs/performance.md.

    python scripts/bench_report.py bench-results/bench-*.json

With several reports, the headline numbers get a min / median / max column over them.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

import orjson

from guardstream.bench.report_text import targets_table


def _get(report: dict[str, Any], *path: str) -> Any:
    node: Any = report
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


HEADLINES: list[tuple[str, tuple[str, ...]]] = [
    ("pipeline throughput, req/s (all at once)", ("pipeline", "throughput", "throughput")),
    ("in-process chain throughput, req/s", ("inprocess", "throughput")),
    ("worker CPU per request, ms (sum of 7 workers)",
     ("pipeline", "throughput", "cpu_ms_per_request", "total")),
    ("same, minus the workers' idle CPU over the run, ms",
     ("pipeline", "throughput", "busy_cpu_ms_per_request", "total")),
    ("in-process CPU per request, ms", ("inprocess", "cpu_ms_per_request")),
    ("p50 end to end at the fixed rate, ms", ("pipeline", "fixed_rate", "latency_ms", "p50")),
    ("p95 end to end at the fixed rate, ms", ("pipeline", "fixed_rate", "latency_ms", "p95")),
    ("p99 end to end at the fixed rate, ms", ("pipeline", "fixed_rate", "latency_ms", "p99")),
    ("raw aiokafka hop, CPU ms per record", ("chains", "raw", "cpu_ms_per_hop", "median")),
    ("Faust hop, CPU ms per record", ("chains", "faust", "cpu_ms_per_hop", "median")),
    ("Faust hop / raw hop, CPU (median of the run's pairs)",
     ("chains", "faust_hop_vs_raw_hop", "median")),
    ("raw 7-hop chain, records/s", ("chains", "raw", "throughput", "median")),
    ("Faust 7-hop chain, records/s", ("chains", "faust", "throughput", "median")),
    ("largest worker RSS, MB", ("targets", "max_worker_rss_mb", "value")),
    ("`up` total RSS, MB", ("pipeline", "memory", "up_total_rss_mb")),
]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1 else f"{value:,.1f}"
    return str(value)


def render(reports: list[dict[str, Any]]) -> list[str]:
    out = []
    last = reports[-1]
    meta = last["meta"]
    out.append(f"Machine: {meta['cpu']}, {meta['cores']} cores, Python {meta['python']}, "
               f"faust-streaming {meta['faust']}, aiokafka {meta['aiokafka']}; load average "
               f"before/after the last run {meta['load_before'][0]} / "
               f"{meta.get('load_after', ['?'])[0]} (shared machine).")
    speeds = [r["meta"][k] for r in reports for k in ("speed_before", "speed_after")
              if k in r["meta"]]
    if speeds:
        py = sorted(s["python_ms"] for s in speeds)
        mm = sorted(s["matmul_ms"] for s in speeds)
        out.append(f"Machine speed during the runs (`guardstream.bench.calibrate`, CPU ms of "
                   f"fixed workloads, lower is faster): Python {py[0]:g}-{py[-1]:g}, "
                   f"float32 matmul {mm[0]:g}-{mm[-1]:g}.")
    out.append("")
    runs = len(reports)
    head = "| metric | " + " | ".join(f"run {i + 1}" for i in range(runs))
    out.append(head + (" | min / median / max |" if runs > 1 else " |"))
    out.append("|---|" + "---|" * (runs + (1 if runs > 1 else 0)))
    for label, path in HEADLINES:
        values = [_get(r, *path) for r in reports]
        row = f"| {label} | " + " | ".join(_fmt(v) for v in values)
        nums = [float(v) for v in values if isinstance(v, int | float)]
        if runs > 1:
            row += " | " + (f"{_fmt(min(nums))} / {_fmt(statistics.median(nums))} / "
                            f"{_fmt(max(nums))}" if nums else "-")
        out.append(row + " |")
    out.append("")
    out.append("Per stage (last run, throughput run): time in the stage from the results' "
               "`stages`, and the CPU its worker process used per request.")
    out.append("")
    out.append("| stage | mean ms in stage (pipeline) | p95 ms | mean ms in stage (in process) "
               "| worker CPU ms/request | same minus idle | idle CPU ms/s | worker RSS MB |")
    out.append("|---|---|---|---|---|---|---|---|")
    stages = _get(last, "pipeline", "throughput", "stages") or {}
    local = _get(last, "inprocess", "stages") or {}
    cpu = _get(last, "pipeline", "throughput", "cpu_ms_per_request") or {}
    rss = _get(last, "pipeline", "memory", "worker_rss_mb") or {}
    busy = _get(last, "pipeline", "throughput", "busy_cpu_ms_per_request") or {}
    idle = _get(last, "pipeline", "idle_cpu_ms_per_second") or {}
    for stage, item in stages.items():
        out.append(f"| {stage} | {item['mean']:.2f} | {item['p95']:.2f} | "
                   f"{_fmt(local.get(stage, {}).get('mean'))} | {_fmt(cpu.get(stage))} | "
                   f"{_fmt(busy.get(stage))} | {_fmt(idle.get(stage))} | "
                   f"{_fmt(rss.get(stage))} |")
    out.append("")
    out.append("Targets (last run):")
    out.append("")
    out.extend(targets_table(last.get("targets", {})))
    extras = last.get("extras") or {}
    for name, item in extras.items():
        table = item.get("table") if isinstance(item, dict) else None
        if not table:
            continue
        out.append("")
        out.append(f"`{item.get('command')}`:")
        out.append("")
        keys = list(table[0])
        out.append("| " + " | ".join(keys) + " |")
        out.append("|" + "---|" * len(keys))
        for row in table:
            out.append("| " + " | ".join(row.get(k, "") for k in keys) + " |")
        out.extend(f"{note}" for note in item.get("notes", []) if note.strip())
        _ = name
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    args = parser.parse_args()
    reports = [orjson.loads(p.read_bytes()) for p in args.reports]
    print("\n".join(render(reports)))


if __name__ == "__main__":
    main()
