"""The report as a few lines of text (and a markdown targets table) for the terminal."""

from __future__ import annotations

from typing import Any

__all__ = ["summary_lines", "targets_table"]


def targets_table(targets: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| target | limit | measured | met |", "|---|---|---|---|"]
    for item in targets.values():
        met = {True: "yes", False: "NO", None: "not measured"}[item["met"]]
        value = "-" if item["value"] is None else f"{item['value']:g}"
        lines.append(f"| {item['what']} | {item['target']} | {value} | {met} |")
    return lines


def summary_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    pipeline = report.get("pipeline", {})
    for name in ("fixed_rate", "throughput"):
        section = pipeline.get(name)
        if section:
            lat = section["latency_ms"]
            lines.append(
                f"pipeline {name}: {section['results']}/{section['requests']} results, "
                f"{section['throughput']:.1f} req/s, p50 {lat.get('p50', 0):.1f} ms, "
                f"p95 {lat.get('p95', 0):.1f} ms, p99 {lat.get('p99', 0):.1f} ms, "
                f"CPU {section['cpu_ms_per_request'].get('total', 0):.2f} ms/request "
                f"({section.get('busy_cpu_ms_per_request', {}).get('total', 0):.2f} "
                f"without idle polling)")
    local = report.get("inprocess")
    if local:
        lines.append(f"in process: {local['throughput']:.1f} req/s, "
                     f"CPU {local['cpu_ms_per_request']:.2f} ms/request")
    chains = report.get("chains")
    if chains:
        for kind in ("raw", "faust"):
            c = chains[kind]
            lines.append(f"{kind} 7-hop chain: {c['throughput'].get('median', 0):.0f} rec/s, "
                         f"{c['cpu_ms_per_hop'].get('median', 0):.4f} CPU ms/hop")
    lines.extend(targets_table(report.get("targets", {})))
    lines.append(f"report: {report.get('report_path')}  chart: {report.get('chart')}")
    return lines
